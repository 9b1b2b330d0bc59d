# expect: rejected
# reason: np.sctypeDict is not available to reward programs
# attack: look the object scalar type up in numpy's type registry, through an alias (resolved by the static check)
import numpy as np


def compute_reward(state, action, prev_state):
    alias = np
    boxed = alias.sctypeDict["object"]
    return float(boxed is None), {}
