# expect: rejected
# reason: ClassDef statements are not allowed
# attack: a class whose __del__ runs code at interpreter exit
class Sneaky:
    def __del__(self):
        open("/tmp/rewardgen-pwned-del", "w")


KEEP = Sneaky()


def compute_reward(state, action, prev_state):
    return 0.0, {}
