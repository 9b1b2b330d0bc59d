# expect: rejected
# reason: total reward is too large for a float
# attack: 10**400: float() raised OverflowError past the check (was failed, not rejected)
def compute_reward(state, action, prev_state):
    return 10**400, {}
