# expect: rejected
# reason: attribute '__globals__' is not allowed
# attack: lambda __globals__ to reach __builtins__
def compute_reward(state, action, prev_state):
    g = (lambda: 0).__globals__
    return 0.0, {"n": float(len(g))}
