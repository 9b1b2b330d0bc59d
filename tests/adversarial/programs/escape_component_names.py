# expect: rejected
# reason: may hold only letters, digits, '_', '.' and '-'
# attack: component names carrying markup, mathtext, escape sequences and Unicode tag characters (shown in tables, plots and the next prompt)
def compute_reward(state, action, prev_state, calls=[0]):
    calls[0] += 1
    if calls[0] >= 100:
        raise ValueError("[bold]boom")
    return 0.0, {"[/x]\x1b]0;pwn\x07": 0.0, "$x^{$": 0.0, "a\nb\x1b[2K": 0.0, "ok\U000e0041": 0.0}
