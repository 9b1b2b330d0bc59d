# expect: rejected
# reason: attribute 'memmap' is not allowed
# attack: np.memmap creates a file outside the working directory
import numpy as np


def compute_reward(state, action, prev_state):
    m = np.memmap("/tmp/rewardgen-pwned-memmap", dtype="float64", mode="w+", shape=(16,))
    m[:] = 1.0
    return 0.0, {}
