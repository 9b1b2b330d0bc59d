# expect: rejected
# reason: import of 'sys' is not allowed
# attack: sys.exit(0) to end the worker with a clean status
import sys


def compute_reward(state, action, prev_state):
    sys.exit(0)
