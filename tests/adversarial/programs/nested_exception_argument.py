# expect: rejected
# reason: raised ValueError: <its message could not be formatted: RecursionError>
# attack: an exception whose argument is nested 100000 deep: formatting the reason raised RecursionError (was failed, not rejected)
def compute_reward(state, action, prev_state):
    nested = []
    for _ in range(100_000):
        nested = [nested]
    raise ValueError(nested)
