# expect: rejected
# reason: smoke test: raised ValueError
# attack: a 10 MB exception message to bloat result.json and the next prompt
def compute_reward(state, action, prev_state):
    raise ValueError("x" * 10_000_000)
