# expect: rejected
# reason: attribute 'setflags' is not allowed
# attack: make the State's read-only arrays writable again (setflags(write=True)), then forge them
def compute_reward(state, action, prev_state):
    state.joint_angles.setflags(write=True)
    state.joint_angles[0] = 100.0
    return 0.0, {}
