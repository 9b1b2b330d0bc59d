# expect: rejected
# reason: np.linalg.test is not available to reward programs
# attack: the linalg submodule's pytest runner, called inside compute_reward
import numpy as np

CANARY_DIR = "/tmp/rewardgen-pwned-canary"


def compute_reward(state, action, prev_state):
    np.linalg.test(extra_argv=["--rootdir", CANARY_DIR, "--confcutdir", CANARY_DIR])
    return 0.0, {}
