# expect: rejected
# reason: .itemset is not allowed in reward code: it writes in place
# attack: raw element writers (itemset, numpy 1.x) that bypass the usual indexing path
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.zeros(2)
    x.itemset(0, 1.0)
    return float(x[0]), {}
