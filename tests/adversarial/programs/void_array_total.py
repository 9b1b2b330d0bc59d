# expect: rejected
# reason: np.zeros produced an array of dtype |V8
# attack: a raw void (bytes) array as the total
import numpy as np


def compute_reward(state, action, prev_state):
    return np.zeros(1, "V8"), {}
