# expect: rejected
# reason: total reward is not finite (nan)
# attack: NaN total
def compute_reward(state, action, prev_state):
    return float("nan"), {}
