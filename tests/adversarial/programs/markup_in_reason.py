# expect: failed
# reason: [/x] [bold red]pwn
# attack: rich markup and a window-title escape in an exception raised well into training (used to crash the loop's terminal output with MarkupError)
def compute_reward(state, action, prev_state, calls=[0]):
    calls[0] += 1
    if calls[0] >= 40:
        raise ValueError("[/x] [bold red]pwn \x1b]0;pwned\x07 at call " + str(calls[0]))
    return 0.0, {"zero": 0.0}
