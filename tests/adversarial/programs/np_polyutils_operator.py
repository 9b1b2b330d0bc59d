# expect: rejected
# reason: attribute 'operator' is not allowed
# attack: operator.attrgetter from numpy.polynomial.polyutils reads dunders by built strings
import numpy as np


def compute_reward(state, action, prev_state):
    u = "_" + "_"
    get = np.polynomial.polyutils.operator.attrgetter(u + "class" + u)
    classes = get(())
    return 0.0, {"n": float(len(str(classes)))}
