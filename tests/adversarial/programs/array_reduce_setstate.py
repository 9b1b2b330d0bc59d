# expect: rejected
# reason: attribute '__reduce__' is not allowed
# attack: pickle protocol methods (__reduce__, then __setstate__ with edited bytes) rebuild an array over forged memory
import numpy as np


def compute_reward(state, action, prev_state):
    state_tuple = np.zeros(1).__reduce__()
    return float(len(state_tuple)), {}
