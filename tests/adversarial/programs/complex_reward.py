# expect: rejected
# reason: total reward is complex
# attack: complex total
def compute_reward(state, action, prev_state):
    return 1.0 + 2j, {}
