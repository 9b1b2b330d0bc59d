# expect: rejected
# reason: return at most 64 named terms
# attack: 100 000 components per step to bloat result.json and the prompt
def compute_reward(state, action, prev_state):
    return 0.0, {"c" + str(i): 0.0 for i in range(100_000)}
