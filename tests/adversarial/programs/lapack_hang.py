# expect: timeout
# reason: exceeded the wall-clock limit
# attack: one long LAPACK call (eigvals of 4000x4000): C code the per-call timer cannot interrupt
import numpy as np


def compute_reward(state, action, prev_state):
    matrix = np.random.default_rng(0).random((4000, 4000))
    values = np.linalg.eigvals(matrix)
    return float(np.abs(values).max()), {}
