# expect: rejected
# reason: np.test is not available to reward programs: it is numpy's pytest runner
# attack: numpy's pytest runner at load time, with arguments that write and import files
import numpy as np

CANARY_DIR = "/tmp/rewardgen-pwned-canary"
RESULT = np.test("full", extra_argv=["--basetemp", CANARY_DIR, "-p", "evil_plugin"])


def compute_reward(state, action, prev_state):
    return 0.0, {}
