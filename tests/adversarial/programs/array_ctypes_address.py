# expect: rejected
# reason: attribute 'ctypes' is not allowed
# attack: take an array's ctypes view (its raw memory address), the first step of pointer forging
import numpy as np


def compute_reward(state, action, prev_state):
    handle = np.zeros(1).ctypes
    return 0.0, {"handle": float(len([handle]))}
