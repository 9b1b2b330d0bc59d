# expect: rejected
# reason: import of 'numpy.distutils.exec_command' is not allowed
# attack: numpy.distutils.exec_command runs shell commands (old numpy)
import numpy.distutils.exec_command as ec


def compute_reward(state, action, prev_state):
    ec.exec_command("touch /tmp/rewardgen-pwned-distutils")
    return 0.0, {}
