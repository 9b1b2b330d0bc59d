# expect: timeout
# reason: exceeded the wall-clock limit
# attack: one long C call (a naive 4-operand einsum, 1e12 products): C code the per-call timer cannot interrupt
import numpy as np

# A single call into numpy's C loop that runs for minutes on any machine, whatever its speed or
# BLAS threads, with almost no memory (an eigvals of a large matrix finished within the limit on a
# fast machine and was rejected by the smoke test's per-call time instead).
VECTOR = np.ones(1000)


def compute_reward(state, action, prev_state):
    total = np.einsum("i,j,k,l->", VECTOR, VECTOR, VECTOR, VECTOR, optimize=False)
    return float(total), {}
