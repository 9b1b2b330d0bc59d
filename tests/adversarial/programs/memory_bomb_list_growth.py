# expect: failed
# reason: MemoryError
# attack: a list in a default argument grows by 64 MB every step
import numpy as np


def compute_reward(state, action, prev_state, hoard=[]):
    hoard.append(np.ones(8 * 1024 * 1024))
    return 0.0, {"held": float(len(hoard))}
