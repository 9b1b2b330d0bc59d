# expect: rejected
# reason: attribute assignment to .pi is not allowed
# attack: np.pi += 1 changes a module constant
import numpy as np


def compute_reward(state, action, prev_state):
    np.pi += 1.0
    return 0.0, {}
