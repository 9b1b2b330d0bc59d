# expect: rejected
# reason: attribute 'view' is not allowed
# attack: reinterpret a float array's bytes as object pointers with view
import numpy as np


def compute_reward(state, action, prev_state):
    raw = np.zeros(2)
    pointers = raw.view("O")
    return float(pointers[0] is None), {}
