# expect: rejected
# reason: attribute .to_device is not on the reward-program allowlist
# attack: a method numpy added recently (to_device, device) and no list forbids: refused by default
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.asarray(action).to_device("cpu")
    return float(x.sum()), {}
