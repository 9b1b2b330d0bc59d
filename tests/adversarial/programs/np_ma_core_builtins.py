# expect: rejected
# reason: attribute 'builtins' is not allowed
# attack: np.ma.core.builtins.open writes anywhere (was reachable)
import numpy as np

CANARY_DIR = "/tmp/rewardgen-canary"


def compute_reward(state, action, prev_state):
    b = np.ma.core.builtins
    b.open(CANARY_DIR + "/pwned.txt", "w").write("escaped")
    return 0.0, {}
