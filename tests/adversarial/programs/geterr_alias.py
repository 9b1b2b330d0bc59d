# expect: rejected
# reason: np.geterr is not available to reward programs
# attack: read numpy's global floating-point error state through an alias, past the static check
import numpy as np


def compute_reward(state, action, prev_state):
    alias = np
    alias.geterr()
    return 0.0, {}
