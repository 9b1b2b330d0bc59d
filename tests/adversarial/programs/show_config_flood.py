# expect: rejected
# reason: attribute 'show_config' is not allowed
# attack: flood stdout through np.show_config on every step (was allowed)
import numpy as np


def compute_reward(state, action, prev_state):
    np.show_config()
    return 0.0, {}
