# expect: rejected
# reason: name 'exit' is not allowed
# attack: the site exit() builtin
def compute_reward(state, action, prev_state):
    exit(0)
