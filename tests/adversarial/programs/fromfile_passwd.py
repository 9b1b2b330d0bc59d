# expect: rejected
# reason: attribute 'fromfile' is not allowed
# attack: np.fromfile reads any host file
import numpy as np


def compute_reward(state, action, prev_state):
    raw = np.fromfile("/etc/passwd", dtype=np.uint8)
    return float(raw.sum()), {}
