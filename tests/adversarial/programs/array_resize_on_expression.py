# expect: rejected
# reason: .resize is not allowed in reward code
# attack: resize reached through an expression the check cannot name (a product, then a method), not a variable
import numpy as np


def compute_reward(state, action, prev_state):
    (np.asarray(action) * 1.0).resize((4096,), refcheck=False)
    return 0.0, {}
