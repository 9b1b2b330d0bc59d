# expect: rejected
# reason: component 'bonus' is not finite (nan)
# attack: a NaN component
def compute_reward(state, action, prev_state):
    return 1.0, {"bonus": float("nan")}
