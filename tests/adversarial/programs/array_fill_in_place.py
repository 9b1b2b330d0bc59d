# expect: rejected
# reason: .fill is not allowed in reward code: it writes in place
# attack: in-place writers (fill) on an array the program holds
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.zeros(3)
    x.fill(1.0)
    return float(x.sum()), {}
