# expect: rejected
# reason: name 'open' is not allowed
# attack: read /etc/passwd into a component
def compute_reward(state, action, prev_state):
    text = open("/etc/passwd").read()
    return 0.0, {"leak": float(len(text))}
