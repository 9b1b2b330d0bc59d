# expect: rejected
# reason: .resize is not allowed in reward code: it reallocates the array's memory under live views
# attack: x.resize(shape, refcheck=False) frees the buffer under a live view (use-after-free toward the real builtins)
import numpy as np


def compute_reward(state, action, prev_state):
    buf = np.zeros(8)
    view = buf[:4]
    buf.resize((1 << 20,), refcheck=False)
    return float(view.sum()), {}
