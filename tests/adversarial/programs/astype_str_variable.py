# expect: rejected
# reason: .astype(): kind is not a numeric dtype
# attack: astype to str through a variable, so no string constant names the dtype
import numpy as np


def compute_reward(state, action, prev_state):
    kind = str
    text = action[:1].astype(kind)
    return text, {}
