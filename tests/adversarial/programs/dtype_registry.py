# expect: rejected
# reason: np.dtype is not available to reward programs: pass a dtype name instead
# attack: build an object dtype from numpy's dtype constructor/registry
import numpy as np


def compute_reward(state, action, prev_state):
    kind = np.dtype("O")
    return float(kind.itemsize), {}
