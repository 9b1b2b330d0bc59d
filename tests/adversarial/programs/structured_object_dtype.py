# expect: rejected
# reason: dtype=[('p', 'O')] is not a numeric dtype
# attack: an object field laid over a caller-owned byte buffer (np.ndarray(buffer=)): forged pointers
import numpy as np


def compute_reward(state, action, prev_state):
    raw = np.zeros(16, dtype=np.uint8)
    forged = np.ndarray((1,), dtype=[("p", "O")], buffer=raw)
    return float(len(forged)), {}
