# expect: rejected
# reason: read-only
# attack: np.copyto into prev_state's arrays
# task: hopper
import numpy as np


def compute_reward(state, action, prev_state):
    np.copyto(prev_state.joint_velocities, 0.0)
    return 0.0, {}
