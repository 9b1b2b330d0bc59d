# expect: rejected
# reason: np.array produced an array of dtype |S5
# attack: a 1-element bytes array as a component
import numpy as np


def compute_reward(state, action, prev_state):
    return 0.0, {"bonus": np.array([b"1e300"])}
