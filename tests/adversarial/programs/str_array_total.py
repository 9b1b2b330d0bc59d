# expect: rejected
# reason: np.array produced an array of dtype <U5
# attack: a 1-element string array as the total (float() of it is 1e300)
import numpy as np


def compute_reward(state, action, prev_state):
    return np.array(["1e300"]), {}
