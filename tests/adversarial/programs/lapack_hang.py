# expect: timeout
# reason: exceeded the wall-clock limit
# attack: one long LAPACK call (eigvals of 4000x4000): C code the per-call timer cannot interrupt
import numpy as np

# built at load time (about a second), so that the first call is the LAPACK call alone
MATRIX = np.sin(np.arange(16_000_000.0)).reshape(4000, 4000)


def compute_reward(state, action, prev_state):
    values = np.linalg.eigvals(MATRIX)
    return float(np.abs(values).max()), {}
