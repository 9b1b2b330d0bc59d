# expect: rejected
# reason: attribute 'f_back' is not allowed
# attack: generator gi_frame.f_back.f_globals to reach the worker's globals
def compute_reward(state, action, prev_state):
    gen = (x for x in [1])
    frame = gen.gi_frame.f_back
    return 0.0, {"n": float(len(frame.f_globals))}
