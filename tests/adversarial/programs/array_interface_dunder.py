# expect: rejected
# reason: attribute '__array_interface__' is not allowed
# attack: read the buffer address from __array_interface__
import numpy as np


def compute_reward(state, action, prev_state):
    pointer = np.zeros(1).__array_interface__["data"][0]
    return float(pointer % 7), {}
