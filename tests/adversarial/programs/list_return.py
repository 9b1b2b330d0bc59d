# expect: rejected
# reason: got list
# attack: returns a list instead of a tuple
def compute_reward(state, action, prev_state):
    return [1.0, {}]
