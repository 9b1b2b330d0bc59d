# expect: rejected
# reason: .flat is not allowed in reward code: it writes through an iterator
# attack: write through the flat iterator (x.flat[i] = v) and reach its .base
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.zeros(4)
    it = x.flat
    it[0] = 1.0
    return float(x[0]), {}
