"""Training and evaluation of one candidate reward with stable-baselines3."""

from rewardgen.train.job import run_candidate

__all__ = ["run_candidate"]
