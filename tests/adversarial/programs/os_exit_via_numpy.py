# expect: rejected
# reason: attribute '_exit' is not allowed
# attack: os._exit through numpy's module attributes
import numpy as np


def compute_reward(state, action, prev_state):
    np.os._exit(0)
