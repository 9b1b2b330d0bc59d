# expect: rejected
# reason: defining the program failed: MemoryError
# attack: allocate 2 TB in a top-level constant, at load
import numpy as np

BIG = np.ones((1 << 38,))


def compute_reward(state, action, prev_state):
    return 0.0, {}
