# expect: rejected
# reason: component names must be strings
# attack: components keyed by ints
def compute_reward(state, action, prev_state):
    return 1.0, {1: 1.0, 2: 0.0}
