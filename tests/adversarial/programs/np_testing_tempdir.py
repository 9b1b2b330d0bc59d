# expect: rejected
# reason: attribute 'testing' is not allowed
# attack: np.testing helpers touch the file system
import numpy as np


def compute_reward(state, action, prev_state):
    np.testing.assert_array_equal(action, action)
    return 0.0, {}
