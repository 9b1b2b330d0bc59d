# expect: rejected
# reason: only allowed on a string literal
# attack: format template built at run time to hide the field
def compute_reward(state, action, prev_state):
    u = "_" + "_"
    template = "{0." + u + "class" + u + "}"
    return 0.0, {"n": float(len(template.format(state)))}
