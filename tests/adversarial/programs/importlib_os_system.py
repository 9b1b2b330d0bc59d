# expect: rejected
# reason: import of 'importlib' is not allowed
# attack: os.system through importlib.import_module
import importlib


def compute_reward(state, action, prev_state):
    importlib.import_module("os").system("touch /tmp/rewardgen-pwned-importlib")
    return 0.0, {}
