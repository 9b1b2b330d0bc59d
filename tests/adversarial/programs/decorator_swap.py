# expect: rejected
# reason: is not allowed
# attack: a decorator that replaces the entry point with something from __globals__
@(lambda f: f.__globals__["__builtins__"]["open"])
def compute_reward(state, action, prev_state):
    return 0.0, {}
