# expect: failed
# reason: killed by SIGSEGV: the reward program crashed the Python interpreter
# attack: 150000 chained map() iterators, 25000 more per call (each call stays fast): taking one value recurses in C until the interpreter dies (SIGSEGV)
def compute_reward(state, action, prev_state, chain=[[1.0]], calls=[0]):
    calls[0] += 1
    for _ in range(25_000):
        chain[0] = map(float, chain[0])
    if calls[0] >= 6:
        return max(chain[0]), {}
    return 1.0, {}
