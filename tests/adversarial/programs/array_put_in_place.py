# expect: rejected
# reason: .put is not allowed in reward code: it writes in place
# attack: in-place writers (put with mode="wrap") on an array the program holds
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.zeros(3)
    x.put([0, 5], [1.0, 2.0], mode="wrap")
    return float(x.sum()), {}
