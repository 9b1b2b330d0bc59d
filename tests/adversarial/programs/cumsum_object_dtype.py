# expect: rejected
# reason: .cumsum(): 'O' is not a numeric dtype
# attack: an array method (not wrapped by the surface) asked for an object result by position
import numpy as np


def compute_reward(state, action, prev_state):
    boxed = action[:1].cumsum(0, "O")
    return boxed, {}
