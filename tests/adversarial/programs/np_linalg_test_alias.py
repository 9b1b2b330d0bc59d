# expect: rejected
# reason: np.linalg.test is not available to reward programs
# attack: the linalg pytest runner through a local alias, m = np aliases are resolved by the static check
import numpy as np

CANARY_DIR = "/tmp/rewardgen-pwned-canary"


def compute_reward(state, action, prev_state):
    la = np.linalg
    la.test(extra_argv=["--rootdir", CANARY_DIR])
    return 0.0, {}
