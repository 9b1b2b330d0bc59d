# expect: rejected
# reason: import from 'numpy.lib' is not allowed
# attack: numpy.lib.format.open_memmap writes files
from numpy.lib import format as npformat


def compute_reward(state, action, prev_state):
    npformat.open_memmap("/tmp/rewardgen-pwned-open-memmap.npy", mode="w+", shape=(4,))
    return 0.0, {}
