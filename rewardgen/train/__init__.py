"""The stable-baselines3 side of training: models, env stacks, callbacks and curve statistics.

The worker target that trains a candidate is :func:`rewardgen.worker.train.run_candidate`.
"""
