# expect: rejected
# reason: name 'int' may not be rebound in reward code
# attack: rebind a numeric dtype name so that astype(int) builds a string array
import numpy as np

int = str


def compute_reward(state, action, prev_state):
    return action[:1].astype(int), {}
