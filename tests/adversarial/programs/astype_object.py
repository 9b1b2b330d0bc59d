# expect: rejected
# reason: .astype(): 'O' is not a numeric dtype
# attack: turn the action into an object array with astype
import numpy as np


def compute_reward(state, action, prev_state):
    boxed = action[:1].astype("O")
    return boxed, {}
