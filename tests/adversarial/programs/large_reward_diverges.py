# expect: failed
# reason: reward magnitude reached 1e37 per step: scale the components (training broke down
# attack: within float32 but far too large (1e37 per step): the returns overflow and PPO ends in torch's "Expected parameter loc ... nan"
def compute_reward(state, action, prev_state):
    return 1e37, {"large": 1e37}
