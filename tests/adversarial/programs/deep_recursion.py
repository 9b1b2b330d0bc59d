# expect: rejected
# reason: RecursionError
# attack: unbounded recursion
def depth(n):
    return depth(n + 1)


def compute_reward(state, action, prev_state):
    return float(depth(0)), {}
