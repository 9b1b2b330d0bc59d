# expect: rejected
# reason: array of shape (3,)
# attack: returns an array of shape (3,) as the total
import numpy as np


def compute_reward(state, action, prev_state):
    return np.ones(3), {}
