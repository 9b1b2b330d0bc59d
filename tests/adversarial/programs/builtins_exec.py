# expect: rejected
# reason: import of 'builtins' is not allowed
# attack: exec through the builtins module
import builtins


def compute_reward(state, action, prev_state):
    builtins.exec("import os; os.system('touch /tmp/rewardgen-pwned-builtins')")
    return 0.0, {}
