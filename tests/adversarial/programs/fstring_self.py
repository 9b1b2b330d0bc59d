# expect: rejected
# reason: attribute '__self__' is not allowed
# attack: f-string interpolating a dunder attribute
def compute_reward(state, action, prev_state):
    text = f"{abs.__self__}"
    return 0.0, {"n": float(len(text))}
