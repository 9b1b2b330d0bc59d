# expect: rejected
# reason: attribute 'tofile' is not allowed
# attack: ndarray.tofile writes into the host's directories
import numpy as np

CANARY_DIR = "/tmp/rewardgen-canary"


def compute_reward(state, action, prev_state):
    np.asarray(action).tofile(CANARY_DIR + "/pwned.bin")
    return 0.0, {}
