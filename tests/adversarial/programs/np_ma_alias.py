# expect: rejected
# reason: np.ma is not available to reward programs
# attack: reach numpy.ma through an alias of np at run time
import numpy as np


def compute_reward(state, action, prev_state):
    numpy_module = np
    masked = numpy_module.ma
    return float(masked.masked_invalid(action).sum()), {}
