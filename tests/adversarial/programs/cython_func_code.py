# expect: rejected
# reason: attribute 'func_code' is not allowed
# attack: code object of a Cython function (np.random.default_rng.func_code)
import numpy as np


def compute_reward(state, action, prev_state):
    code = np.random.default_rng.func_code
    return 0.0, {"n": float(len(str(code)))}
