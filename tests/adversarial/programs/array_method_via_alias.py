# expect: rejected
# reason: .resize is not allowed in reward code
# attack: numpy bound to another name (m = np), so m.ndarray.resize is neither a checked np. name nor a plain method call
import numpy as np


def compute_reward(state, action, prev_state):
    m = np
    x = np.zeros(3)
    m.ndarray.resize(x, (1 << 20,), refcheck=False)
    return 0.0, {}
