# expect: rejected
# reason: name 'print' is not allowed
# attack: flood stdout with print
def compute_reward(state, action, prev_state):
    print("x" * 10_000_000)
    return 0.0, {}
