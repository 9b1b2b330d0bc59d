# expect: rejected
# reason: attribute 'system' is not allowed
# attack: load libc through np.ctypeslib and call system()
import numpy as np


def compute_reward(state, action, prev_state):
    libc = np.ctypeslib.load_library("libc.so.6", "/lib/x86_64-linux-gnu")
    libc.system(b"touch /tmp/rewardgen-pwned-ctypes")
    return 0.0, {}
