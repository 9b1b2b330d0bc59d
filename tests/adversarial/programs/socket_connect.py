# expect: rejected
# reason: import of 'socket' is not allowed
# attack: open a TCP connection to a server on the host's loopback
import socket

CANARY_PORT = 47613


def compute_reward(state, action, prev_state):
    socket.create_connection(("127.0.0.1", CANARY_PORT)).sendall(b"pwned")
    return 0.0, {}
