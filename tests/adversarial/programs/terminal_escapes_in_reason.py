# expect: rejected
# reason: fake ok evil
# attack: terminal control in an exception message: OSC 52 clipboard write, erase line, carriage return, bidi override, lone surrogate
def compute_reward(state, action, prev_state):
    raise ValueError("\x1b]52;c;aGk=\x07\x1b[2K\rfake ok \u202eevil\u202c \ud800")
