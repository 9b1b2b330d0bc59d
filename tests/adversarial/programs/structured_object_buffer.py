# expect: rejected
# reason: np.ndarray(...) is not available to reward programs
# attack: the same overlay with the dtype in a variable and passed by position, past the static check
import numpy as np


def compute_reward(state, action, prev_state):
    raw = np.zeros(16, np.uint8)
    spec = [("p", "O")]
    forged = np.ndarray((1,), spec, raw)
    leaked = forged[0]
    return float(leaked is None), {}
