# expect: failed
# reason: killed by SIGSEGV: the reward program crashed the Python interpreter
# attack: 150000 chained map() iterators: taking one value recurses in C until the interpreter dies (SIGSEGV)
def compute_reward(state, action, prev_state):
    values = [1.0]
    for _ in range(150_000):
        values = map(float, values)
    return max(values), {}
