# expect: rejected
# reason: took longer than 1 s
# attack: while True in the reward
def compute_reward(state, action, prev_state):
    n = 0
    while True:
        n += 1
