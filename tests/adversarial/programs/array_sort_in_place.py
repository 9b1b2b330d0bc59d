# expect: rejected
# reason: .sort is not allowed in reward code: it sorts in place; use np.sort(x)
# attack: in-place reordering (sort, partition) of an array the program holds
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.array([3.0, 1.0, 2.0])
    x.sort()
    x.partition(1)
    return float(x[0]), {}
