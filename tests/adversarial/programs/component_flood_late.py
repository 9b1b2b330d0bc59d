# expect: failed
# reason: distinct component names
# attack: hundreds of long component names only after the smoke test (the per-step fast path does not count them)
def compute_reward(state, action, prev_state, calls=[0]):
    calls[0] += 1
    if calls[0] < 20:
        return 0.0, {"alive": 0.0}
    return 0.0, {"term_" + str(i) + "_" + "x" * 80: 0.0 for i in range(300)}
