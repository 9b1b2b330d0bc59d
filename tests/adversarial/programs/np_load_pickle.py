# expect: rejected
# reason: attribute 'load' is not allowed
# attack: np.load with allow_pickle runs a pickle's __reduce__
import numpy as np

CANARY_DIR = "/tmp/rewardgen-canary"


def compute_reward(state, action, prev_state):
    np.load(CANARY_DIR + "/evil.npy", allow_pickle=True)
    return 0.0, {}
