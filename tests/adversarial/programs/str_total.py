# expect: rejected
# reason: total reward is str, not a number
# attack: a numeric string '1.5' was accepted as the total
def compute_reward(state, action, prev_state):
    return "1.5", {}
