# expect: rejected
# reason: name '__builtins__' is not allowed
# attack: walrus binding __builtins__ inside a comprehension
def compute_reward(state, action, prev_state):
    found = [b for _ in [0] if (b := __builtins__)]
    return 0.0, {"n": float(len(found))}
