# expect: rejected
# reason: import of 'numpy.ma' is not available in reward code
# attack: import numpy.ma (its core module holds builtins) past the name list
import numpy.ma as ma


def compute_reward(state, action, prev_state):
    return float(ma.masked_invalid(action).sum()), {}
