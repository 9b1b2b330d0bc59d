# expect: rejected
# reason: name 'getattr' is not allowed
# attack: getattr with a dunder name built from pieces
def compute_reward(state, action, prev_state):
    u = "_" + "_"
    cls = getattr(state, u + "class" + u)
    return 0.0, {"n": float(len(str(cls)))}
