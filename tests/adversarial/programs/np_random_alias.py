# expect: rejected
# reason: np.random is not available to reward programs
# attack: reach the global RNG setters through an alias, m = np aliases are resolved by the static check
import numpy as np


def compute_reward(state, action, prev_state):
    module = np
    module.random.seed(1234)
    return 0.0, {}
