# expect: rejected
# reason: total reward is not finite (inf)
# attack: 1e308 * 10 overflows to inf
def compute_reward(state, action, prev_state):
    return 1e308 * 10, {}
