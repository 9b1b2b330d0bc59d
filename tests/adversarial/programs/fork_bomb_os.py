# expect: rejected
# reason: import of 'os' is not allowed
# attack: fork bomb through os.fork in a loop
import os


def compute_reward(state, action, prev_state):
    while True:
        os.fork()
