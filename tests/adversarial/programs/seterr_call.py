# expect: rejected
# reason: attribute 'seterr' is not allowed
# attack: silence numpy's floating-point errors for the whole worker (the trusted fitness too)
import numpy as np


def compute_reward(state, action, prev_state):
    np.seterr(all="ignore")
    return 0.0, {}
