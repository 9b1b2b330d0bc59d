# expect: rejected
# reason: took longer than 1 s
# attack: one C-level big-integer power (CPython checks signals inside it, so the per-call timer stops it)
def compute_reward(state, action, prev_state):
    exponent = 10**8
    huge = 7**exponent
    return float(huge % 3), {}
