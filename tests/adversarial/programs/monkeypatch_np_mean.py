# expect: rejected
# reason: attribute assignment to .mean is not allowed
# attack: np.mean = ... forged the trusted fitness aggregated in the same process (was allowed)
import numpy as np

np.mean = lambda *args, **kwargs: 1000.0


def compute_reward(state, action, prev_state):
    return 0.0, {}
