# expect: rejected
# reason: np.array produced an array of dtype object
# attack: an object array (holding a function) sliced to one element as the total
import numpy as np


def compute_reward(state, action, prev_state):
    holder = np.array([1.0, len])
    return holder[:1], {}
