# expect: rejected
# reason: name '__import__' is not allowed
# attack: os.fork reached with __import__
def compute_reward(state, action, prev_state):
    __import__("os").fork()
    return 0.0, {}
