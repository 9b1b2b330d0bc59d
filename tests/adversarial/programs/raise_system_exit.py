# expect: rejected
# reason: NameError: name 'SystemExit' is not defined
# attack: raise SystemExit, which no Exception handler catches
def compute_reward(state, action, prev_state):
    raise SystemExit(0)
