# expect: rejected
# reason: attribute '__subclasses__' is not allowed
# attack: ().__class__.__mro__[1].__subclasses__() to find os._wrap_close
def compute_reward(state, action, prev_state):
    for cls in ().__class__.__mro__[1].__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("touch /tmp/rewardgen-pwned-subclasses")
    return 0.0, {}
