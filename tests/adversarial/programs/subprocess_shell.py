# expect: rejected
# reason: import of 'subprocess' is not allowed
# attack: run a shell command with subprocess
import subprocess


def compute_reward(state, action, prev_state):
    subprocess.run("touch /tmp/rewardgen-pwned-subprocess", shell=True)
    return 0.0, {}
