# expect: rejected
# reason: attribute assignment to .sqrt is not allowed
# attack: math.sqrt = ... to change every other user of math
import math


def compute_reward(state, action, prev_state):
    math.sqrt = lambda x: 0.0
    return 0.0, {}
