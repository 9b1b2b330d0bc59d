# expect: rejected
# reason: import of numpy.f2py is not allowed
# attack: numpy.f2py compiles and runs arbitrary code
from numpy import f2py


def compute_reward(state, action, prev_state):
    f2py.compile("subroutine f\nend", modulename="evil")
    return 0.0, {}
