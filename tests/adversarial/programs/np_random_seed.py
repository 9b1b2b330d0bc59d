# expect: rejected
# reason: np.random is not available to reward programs: a reward must be a deterministic
# attack: reseed numpy's global RNG (shared with the trusted code in the worker)
import numpy as np

SEEDED = np.random.seed(0)


def compute_reward(state, action, prev_state):
    return 0.0, {}
