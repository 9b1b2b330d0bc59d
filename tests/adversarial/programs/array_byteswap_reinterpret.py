# expect: rejected
# reason: .byteswap is not allowed in reward code
# attack: rewrite an array's bytes in place (byteswap(inplace=True)), the raw material of forged values
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.ones(2)
    x.byteswap(inplace=True)
    return float(x[0]), {}
