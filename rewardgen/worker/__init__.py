"""What runs inside worker processes, with the trust boundary kept visible.

``evaluate`` is a *trusted* target: it never imports or loads reward code, only policy weights
(plain tensors, :mod:`.checkpoints`) written by the untrusted training worker, and measures
fitness on the native env. The untrusted training target lives in :mod:`rewardgen.worker.train`.
"""
