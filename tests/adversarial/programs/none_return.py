# expect: rejected
# reason: got NoneType
# attack: returns None
def compute_reward(state, action, prev_state):
    return None
