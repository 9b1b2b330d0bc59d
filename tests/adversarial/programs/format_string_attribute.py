# expect: rejected
# reason: reads an attribute
# attack: '{0.__class__}'.format reads attributes without an Attribute node
def compute_reward(state, action, prev_state):
    text = "{0.count.__self__.__class__}".format(state)
    return 0.0, {"n": float(len(text))}
