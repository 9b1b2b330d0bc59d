# expect: rejected
# reason: import of 'signal' is not allowed
# attack: ignore SIGTERM/SIGALRM so the worker cannot be stopped
import signal


def compute_reward(state, action, prev_state):
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0.0, {}
