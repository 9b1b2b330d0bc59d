# expect: rejected
# reason: np.test is not available to reward programs
# attack: reach np.test through an alias at load time, m = np aliases are resolved by the static check
import numpy as np

CANARY_DIR = "/tmp/rewardgen-pwned-canary"
NP = np
RUNNER = NP.test


def compute_reward(state, action, prev_state):
    RUNNER("full", extra_argv=["--basetemp", CANARY_DIR])
    return 0.0, {}
