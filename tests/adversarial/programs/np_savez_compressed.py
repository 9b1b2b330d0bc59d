# expect: rejected
# reason: attribute 'savez_compressed' is not allowed
# attack: np.savez_compressed writes a file (was not forbidden)
import numpy as np

CANARY_DIR = "/tmp/rewardgen-canary"


def compute_reward(state, action, prev_state):
    np.savez_compressed(CANARY_DIR + "/pwned.npz", a=action)
    return 0.0, {}
