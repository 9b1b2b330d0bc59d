# expect: rejected
# reason: attribute 'tofile' is not allowed
# attack: array serialisers that write files or pickles (tofile, dump, dumps)
import numpy as np


def compute_reward(state, action, prev_state):
    x = np.asarray(action)
    x.tofile("/tmp/rewardgen-pwned-tofile")
    x.dump("/tmp/rewardgen-pwned-dump")
    return 0.0, {}
