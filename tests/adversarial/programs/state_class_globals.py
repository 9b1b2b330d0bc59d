# expect: rejected
# reason: attribute '__globals__' is not allowed
# attack: state.__class__ to a method's __globals__
def compute_reward(state, action, prev_state):
    g = state.__class__.__repr__.__globals__
    g["os"].system("touch /tmp/rewardgen-pwned-state-class")
    return 0.0, {}
