"""The escape harness itself: a payload runs inside the real sandbox and training goes on."""

from __future__ import annotations

from pathlib import Path

from tests.adversarial.escaped import observed, run_escaped


def test_a_payload_runs_in_the_sandbox_and_the_candidate_is_measured(tmp_path: Path) -> None:
    result, cand = run_escaped("noop", tmp_path)
    assert result.status == "ok", result.reason
    assert result.fitness is not None
    seen = observed(cand)
    assert seen["pid"] < 100  # its own pid namespace
