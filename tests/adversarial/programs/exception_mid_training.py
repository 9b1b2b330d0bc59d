# expect: failed
# reason: ran out of patience
# attack: raises after 40 calls, well into training
def compute_reward(state, action, prev_state, calls=[0]):
    calls[0] += 1
    if calls[0] >= 40:
        raise ValueError("ran out of patience at call " + str(calls[0]))
    return 0.0, {"zero": 0.0}
