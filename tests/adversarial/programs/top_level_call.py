# expect: rejected
# reason: top-level expressions other than docstrings are not allowed
# attack: code run at import, before the smoke test
import numpy as np

np.zeros(1 << 40)


def compute_reward(state, action, prev_state):
    return 0.0, {}
