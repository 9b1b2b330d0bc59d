# expect: rejected
# reason: defining the program failed: RewardCodeError: np.ndarray(...) is not available
# attack: build the object-over-bytes overlay at load time, before any smoke test runs
import numpy as np

RAW = np.zeros(16, np.uint8)
SPEC = [("p", "O")]
FORGED = np.ndarray((1,), SPEC, RAW)


def compute_reward(state, action, prev_state):
    return float(FORGED[0] is None), {}
