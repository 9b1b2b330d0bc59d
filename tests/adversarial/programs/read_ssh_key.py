# expect: rejected
# reason: attribute 'genfromtxt' is not allowed
# attack: read ~/.ssh/id_rsa with np.genfromtxt
import numpy as np


def compute_reward(state, action, prev_state):
    key = np.genfromtxt("/root/.ssh/id_rsa", dtype=str)
    return 0.0, {"leak": float(len(key))}
