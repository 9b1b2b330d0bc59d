# expect: rejected
# reason: attribute 'set_printoptions' is not allowed
# attack: change numpy's global print options (and the trusted code's logs) from reward code
import numpy as np


def compute_reward(state, action, prev_state):
    alias = np
    alias.set_printoptions(threshold=10**9, linewidth=10**9)
    return 0.0, {}
