# expect: failed
# reason: s per call on average over
# attack: a finite but slow loop on every step, legal but too slow to train
def compute_reward(state, action, prev_state):
    total = 0.0
    for i in range(1_500_000):
        total += i * 1e-12
    return total, {"work": total}
