# expect: rejected
# reason: MemoryError
# attack: allocate a 2 TB numpy array
import numpy as np


def compute_reward(state, action, prev_state):
    big = np.ones((1 << 38,))
    return float(big[0]), {}
