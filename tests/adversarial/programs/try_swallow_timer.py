# expect: rejected
# reason: Try statements are not allowed
# attack: catch BaseException to swallow the smoke test's timer
def compute_reward(state, action, prev_state):
    try:
        while True:
            pass
    except BaseException:
        pass
    return 0.0, {}
