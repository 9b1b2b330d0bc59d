# expect: rejected
# reason: reward magnitude reached 1e308 per step, beyond the float32 range
# attack: finite but huge (1e308 per step): passed the finiteness check, then PPO ended in torch's "Expected parameter loc ... nan"
def compute_reward(state, action, prev_state):
    return 1e308, {"huge": 1e308}
