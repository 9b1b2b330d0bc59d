# expect: rejected
# reason: name 'type' is not allowed
# attack: type(state) to reach the State class and its module
def compute_reward(state, action, prev_state):
    cls = type(state)
    return 0.0, {"n": float(len(str(cls)))}
