# expect: rejected
# reason: np.empty is not available to reward programs: it returns uninitialised memory
# attack: read uninitialised heap memory (addresses) with np.empty
import numpy as np


def compute_reward(state, action, prev_state):
    leak = np.empty(4096)
    return float(leak[0] * 0.0), {}
