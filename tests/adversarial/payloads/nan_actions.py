"""Makes the policy's action NaN from finite weights (issue 22: "the evaluator refuses
non-finite actions").

It patches the checkpoint writer so that every checkpoint holds weights that are all finite
(the checkpoint loader refuses NaN and inf tensors) but whose action is ``inf - inf``: the
hidden ReLU units are driven to 3e38 and the action head weighs two of them +3e38 and -3e38,
so the products overflow to +inf and -inf and their sum is NaN. MuJoCo would silently zero a
NaN control, so without a check the candidate would be measured as "stand still" and ranked.
"""

from __future__ import annotations

from typing import Any

from rewardgen.runs.records import CandidateJob
from tests.adversarial.escaped import write_observed

HUGE = 3e38


def payload(job: CandidateJob) -> None:
    import torch

    import rewardgen.train.checkpoints as checkpoints
    from rewardgen.tasks.spec import load_task
    from rewardgen.worker.evaluate import build_policy_model

    forger = build_policy_model(load_task(job.task), job)
    policy = forger.policy
    with torch.no_grad():
        hidden = policy.mlp_extractor.policy_net[0]
        hidden.weight.zero_()
        hidden.bias.fill_(HUGE)
        head = torch.zeros_like(policy.action_net.weight)
        head[:, 0], head[:, 1] = HUGE, -HUGE
        policy.action_net.weight.copy_(head)
        policy.action_net.bias.zero_()
    finite = all(bool(torch.isfinite(v).all()) for v in policy.state_dict().values())
    original = checkpoints.save_weights

    def save_overflowing(_: Any, folder: Any, timesteps: int) -> Any:
        return original(policy, folder, timesteps)

    checkpoints.save_weights = save_overflowing  # type: ignore[assignment]
    write_observed(
        job, weights_finite=finite, activation=type(policy.mlp_extractor.policy_net[1]).__name__
    )
