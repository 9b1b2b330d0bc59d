"""A key on the command line never reaches the run directory; resume gets it from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rewardgen
from rewardgen.cli.secret_args import (
    check_no_secret_in_config,
    drop_saved_secrets,
    missing_key_line,
    move_secrets_to_environment,
)
from rewardgen.errors import ConfigError
from rewardgen.llm.offline import OFFLINE_NAME
from tests.fakes.openai_server import FakeOpenAIServer, markdown
from tests.helpers import TINY, compose_config

BIN = Path(sys.executable).parent
ROOT = Path(rewardgen.__file__).resolve().parents[1]  # the scripts run this checkout's code
SECRET = "sk-test-SECRET-4f1e9a7c2b"
PENDULUM = """import numpy as np


def compute_reward(state, action, prev_state):
    upright = -abs(float(state.pole_angle))
    return upright, {"upright": upright}
"""


@pytest.mark.parametrize(
    "item",
    [f"llm.api_key={SECRET}", f"+llm.api_key={SECRET}", f"++llm.api_key='{SECRET}'",
     f'llm.api_key="{SECRET}"'],
)  # fmt: skip
def test_a_secret_override_moves_to_the_environment(item: str) -> None:
    env: dict[str, str] = {}
    assert move_secrets_to_environment(["task=hopper", item, "seed=1"], env) == [
        "task=hopper",
        "seed=1",
    ]
    assert env == {"OPENAI_API_KEY": SECRET}


def test_a_null_key_sets_nothing_and_other_keys_stay() -> None:
    env: dict[str, str] = {}
    argv = ["llm.api_key=null", "llm.base_url=http://127.0.0.1:1/v1", "llm.model=k"]
    assert move_secrets_to_environment(argv, env) == argv[1:]
    assert env == {}


def test_a_key_in_a_config_file_is_refused_and_a_saved_one_dropped() -> None:
    cfg = compose_config([*TINY, "llm.api_key=sk-from-a-yaml"])
    with pytest.raises(ConfigError, match=r"llm\.api_key is set in a config file.*OPENAI_API_KEY"):
        check_no_secret_in_config(cfg)
    drop_saved_secrets(cfg)
    assert cfg.llm.api_key is None
    check_no_secret_in_config(cfg)


def test_missing_key_line_only_when_a_model_was_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    asked: list[dict[str, Any]] = [{"event": "llm_request", "proposer": "gpt-4o"}]
    offline: list[dict[str, Any]] = [{"event": "llm_request", "proposer": OFFLINE_NAME}]
    auto = compose_config([*TINY])
    line = missing_key_line(auto, asked)
    assert line is not None and "OPENAI_API_KEY" in line and "\n" not in line
    assert missing_key_line(auto, offline) is None  # it was the offline baseline all along
    assert missing_key_line(compose_config([*TINY, "llm=openai"]), []) is not None
    assert missing_key_line(compose_config([*TINY, "llm=offline"]), asked) is None
    local = compose_config([*TINY, "llm.base_url=http://127.0.0.1:1/v1"])
    assert missing_key_line(local, asked) is None
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert missing_key_line(auto, asked) is None


def _run(
    script: str, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [str(BIN / script), *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=600
    )


def _files_holding(root: Path, text: str) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and text.encode() in p.read_bytes()
    )


def test_a_command_line_key_is_in_no_file_of_the_run_and_resume_asks_for_it(
    tmp_path: Path,
) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    args = [a for a in TINY if not a.startswith(("loop.", "final."))]
    with FakeOpenAIServer(answerer=lambda body, i: markdown(PENDULUM)) as server:
        url = {"OPENAI_BASE_URL": server.base_url}  # from the environment: not saved either
        first = _run(
            "rewardgen", *args, "llm=openai", f"llm.api_key={SECRET}", f"llm.cache_dir={cache}",
            "loop.generations=1", "loop.samples=2", "final.enabled=false",
            f"hydra.run.dir={run_dir}", cwd=tmp_path, env=url,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr[-3000:]
        assert server.chat_requests, "the model was never asked"
        assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in server.chat_requests)
        assert SECRET not in first.stdout + first.stderr
        assert (run_dir / ".hydra" / "overrides.yaml").is_file()
        assert _files_holding(run_dir, SECRET) == []
        assert _files_holding(cache, SECRET) == []

        (run_dir / "gen_000" / "cand_01" / "result.json").unlink()  # killed while training it
        lost = _run("rewardgen-resume", str(run_dir), cwd=tmp_path, env={})
        assert lost.returncode == 1
        lines = lost.stderr.strip().splitlines()
        assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0], lost.stderr[-2000:]
        again = _run(
            "rewardgen-resume", str(run_dir), f"llm.api_key={SECRET}", cwd=tmp_path, env=url
        )
        assert again.returncode == 0, again.stderr[-3000:]
    assert (run_dir / "gen_000" / "cand_01" / "result.json").is_file()
    assert _files_holding(run_dir, SECRET) == []
