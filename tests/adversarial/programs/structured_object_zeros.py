# expect: rejected
# reason: np.zeros produced an array of dtype [('p', 'O')]
# attack: an allowlisted constructor asked for a structured object dtype by position
import numpy as np


def compute_reward(state, action, prev_state):
    spec = [("p", "O")]
    holder = np.zeros(2, spec)
    return float(len(holder)), {}
