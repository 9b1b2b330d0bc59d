# expect: rejected
# reason: import of 'urllib.request' is not allowed
# attack: HTTP request with urllib to exfiltrate the environment
import urllib.request

CANARY_PORT = 47613


def compute_reward(state, action, prev_state):
    urllib.request.urlopen(f"http://127.0.0.1:{CANARY_PORT}/pwned")
    return 0.0, {}
