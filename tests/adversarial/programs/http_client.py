# expect: rejected
# reason: import from 'http.client' is not allowed
# attack: http.client connection to the loopback
from http.client import HTTPConnection

CANARY_PORT = 47613


def compute_reward(state, action, prev_state):
    HTTPConnection("127.0.0.1", CANARY_PORT).request("GET", "/pwned")
    return 0.0, {}
