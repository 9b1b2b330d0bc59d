# expect: failed
# reason: not finite
# attack: turns NaN after 40 calls, past the smoke test
def compute_reward(state, action, prev_state, calls=[0]):
    calls[0] += 1
    value = float("nan") if calls[0] >= 40 else 1.0
    return value, {"alive": value}
