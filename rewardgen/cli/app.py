"""Console entry points. Each Hydra app is a thin shell around a pure function."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rewardgen.cli.check import check_command_line, validate
from rewardgen.cli.keys import key_error, schema_keys
from rewardgen.cli.secret_args import (
    drop_saved_secrets,
    missing_key_line,
    move_secrets_to_environment,
)
from rewardgen.config import EvalConfig, RewardGenConfig, method_schema, register_configs
from rewardgen.errors import ConfigError, LLMError, RewardGenError, RunDirError
from rewardgen.resources import resource_dir
from rewardgen.sandbox.contract import CleanFormatter, clean_text

log = logging.getLogger("rewardgen")
CONF_DIR = str(resource_dir("conf"))
register_configs()
os.environ.setdefault("MUJOCO_GL", "egl")


def _unique_suffix() -> str:
    """A random suffix for run directories (``${rewardgen.unique:}`` in conf/config.yaml).

    Two runs started in the same second (a shell loop, a job array) would otherwise share
    ``runs/<task>/<time>``, and Hydra writes ``.hydra/config.yaml`` there before any of our
    code runs. Cached per config, like Hydra's ``now``, so one run resolves it once.
    """
    return secrets.token_hex(3)


OmegaConf.register_new_resolver("rewardgen.unique", _unique_suffix, use_cache=True, replace=True)


def fail_in_one_line(error: BaseException) -> NoReturn:
    """One clear line on stderr, exit status 1; finished work stays in the run directory."""
    print(f"rewardgen: error: {' '.join(clean_text(str(error)).split())}", file=sys.stderr)
    sys.exit(1)


def _check_command_line(config_name: str, schema: type, prog: str) -> None:
    """Compose and validate the command line before Hydra makes the run directory."""
    try:
        check_command_line(sys.argv[1:], CONF_DIR, config_name, schema)
    except RewardGenError as e:
        print(f"{prog}: error: {' '.join(clean_text(str(e)).split())}", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def stop_on_ctrl_c(prog: str) -> Iterator[None]:
    """The first Ctrl-C kills every running worker's process tree (``sandbox.worker.STOP``) and
    raises KeyboardInterrupt here, so the run writes summary.json and ends within seconds; a
    second Ctrl-C exits at once (a resume cleans up whatever that left)."""
    from rewardgen.sandbox.worker import STOP, request_stop

    def on_sigint(signum: int, frame: Any) -> None:
        if STOP.is_set():
            os.write(2, f"\n{prog}: second Ctrl-C: exiting at once\n".encode())
            os._exit(130)
        request_stop()
        raise KeyboardInterrupt

    STOP.clear()
    if threading.current_thread() is not threading.main_thread():  # a launcher's thread: only
        yield  # the main thread may set handlers; Python's KeyboardInterrupt stays in charge
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        if not STOP.is_set():  # after a Ctrl-C the handler stays until the exit: a second one
            signal.signal(signal.SIGINT, previous)  # while summary.json is written exits 130


def exit_stopped(line: str) -> NoReturn:
    """Print the one line after a Ctrl-C and exit 130 (128 + SIGINT), as shells expect.

    The exit skips interpreter shutdown, which resets SIGINT to its default action: a second
    Ctrl-C in that window would kill the process by the signal (status -2, not 130). A local Ray
    cluster is shut down and log files and the standard streams are flushed first; the run's
    files were written atomically before.
    """
    print(f"\n{line}", file=sys.stderr)
    ray = sys.modules.get("ray")  # a local Ray cluster is stopped by Ray's own exit hook: run it
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _stopped(prog: str, run_dir: Path | None) -> NoReturn:
    where = (f"; finished work is kept in {run_dir}: continue with `rewardgen-resume {run_dir}`"
             if run_dir is not None else "")
    exit_stopped(f"{prog}: stopped by the user{where}")


def run(cfg: DictConfig, run_dir: Path, interactive: bool = True, *,
        resume_overrides: list[str] | None = None) -> dict[str, Any]:
    """Run the loop in ``run_dir`` and return the summary (the pure function behind ``rewardgen``).

    The run holds ``run_dir``'s lock throughout, so a second run or resume of the same directory
    fails at once; what a killed earlier owner left behind is cleaned up first.

    Args:
        cfg: the composed config.
        run_dir: the run directory (new, or one of the same run to continue).
        interactive: draw progress and tables on the terminal.
        resume_overrides: for ``rewardgen-resume``: the ``key=value`` overrides it applied
            (logged as the ``run_resumed`` event); None for a plain run.

    Raises:
        RunDirError: the directory is in use, foreign, or from another format version.
        LLMError: the LLM stayed unreachable; summary.json was written first (``stopped``).
        ConfigError: a value that cannot work (:func:`rewardgen.cli.check.validate`).
        KeyboardInterrupt: Ctrl-C; summary.json was written first (``stopped``).
    """
    from rewardgen.runs.lock import RunLock
    from rewardgen.runs.store import RunStore
    from rewardgen.tasks.spec import use_task_dirs

    for warning in validate(cfg):
        log.warning(warning)
    use_task_dirs(cfg.get("task_dirs"))  # before anything loads the task, here or in workers
    if cfg.method.name == "motif":  # no code to evolve: collect, caption, label, one training
        from rewardgen.search.motif import run_motif

        with RunLock(run_dir):
            return run_motif(cfg, run_dir, interactive)
    if cfg.method.name in ("clip", "vlm_preference"):  # no code to evolve: one vision training
        from rewardgen.search.vision import run_vision

        with RunLock(run_dir):
            return run_vision(cfg, run_dir, interactive)
    from rewardgen.reporting.summary import finish_run
    from rewardgen.reporting.terminal import RunUI
    from rewardgen.search.final import run_final
    from rewardgen.search.loop import Loop

    manifest = {
        "task": cfg.task,
        "method": cfg.method.name,
        "llm_provider": cfg.llm.provider,
        "llm_model": cfg.llm.model,
        "seed": int(cfg.seed),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    manifest["config"]["llm"].pop("api_key", None)  # type: ignore[index, union-attr]
    with RunLock(run_dir):
        store = RunStore.create(run_dir, manifest)
        store.recover()
        if resume_overrides is not None:
            store.event("run_resumed", overrides=[_redact(o) for o in resume_overrides])
        ui = RunUI(enabled=interactive)
        loop = Loop(cfg, store, ui)
        outcome = loop.run()  # the search, then the final phase on its best (Eureka's main)
        if outcome.stopped is None and outcome.best is not None and cfg.final.enabled:
            try:
                outcome.final = run_final(cfg, store, loop.task, outcome.best, loop.executor, ui)
            except KeyboardInterrupt:  # the workers are being killed (sandbox.worker.STOP)
                loop.interrupted(outcome, outcome.best, "the final phase")
        summary = finish_run(outcome, ui, cfg.report)
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.error is not None:
        raise LLMError(
            f"{outcome.error}; the run directory is kept: resume with "
            f"`rewardgen-resume {store.root}`"
        ) from outcome.error
    return summary


def _redact(override: str) -> str:
    key = override.partition("=")[0].lower()
    return f"{override.partition('=')[0]}=***" if "key" in key or "token" in key else override


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _rewardgen_app(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = _guarded("rewardgen", lambda: run(cfg, run_dir), run_dir)
    if _all_failed(summary):
        sys.exit(1)  # the reasons were printed with the candidates


def _guarded(name: str, body: Callable[[], dict[str, Any]],
             stopped_dir: Path | None) -> dict[str, Any]:
    """Run an app's body: Ctrl-C stops it in one line, a RewardGenError fails it in one line."""
    try:
        with stop_on_ctrl_c(name):
            return body()
    except KeyboardInterrupt:
        _stopped(name, stopped_dir)
    except RewardGenError as e:
        fail_in_one_line(e)


def _all_failed(summary: dict[str, Any]) -> bool:
    """No candidate trained: scripts and sweeps must see it in the exit status."""
    return bool(summary.get("candidates")) and not summary.get("best")


def main() -> None:
    """``rewardgen``: the evolutionary reward search (Hydra command line)."""
    sys.argv[1:] = move_secrets_to_environment(sys.argv[1:])  # before Hydra saves the argv
    _check_command_line("config", RewardGenConfig, "rewardgen")
    _rewardgen_app()


def _log_to(path: Path) -> None:
    """Outside Hydra: the same logging as a Hydra run (file: INFO, terminal: warnings)."""
    fmt = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(CleanFormatter(fmt))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(CleanFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[file_handler, console], force=True)


def resume_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's own composed config (``RUN_DIR/.hydra/config.yaml``) with ``key=value`` overrides.

    Overrides are for what changed around the run, not for the run itself: a new
    ``llm.base_url`` after the server moved, a longer ``llm.timeout_s``, fewer
    ``executor.workers``. They apply to this resume only and are logged; changing ``task``,
    ``method`` or ``seed`` is refused when the run starts (the directory's identity).

    Raises:
        RunDirError: no config in the run directory.
        ConfigError: an override that is not ``key=value``, names no config key, or has the
            wrong type.
    """
    config_path = run_dir / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{config_path} is missing; cannot resume without the run's config")
    try:
        saved = OmegaConf.load(config_path)
        drop_saved_secrets(saved)  # a key comes from the environment or the resume line
        method = str(OmegaConf.select(saved, "method.name", default="eureka"))
        schema = RewardGenConfig(method=method_schema(method)())
        known = schema_keys(RewardGenConfig, method)
        node = OmegaConf.select(saved, "method")
        for key in [k for k in (node or {}) if f"method.{k}" not in known]:
            node.pop(key)  # a run from before one schema per method saved every method's keys
        cfg = OmegaConf.merge(OmegaConf.structured(schema), saved)
    except (OmegaConfBaseException, ConfigError) as e:
        raise RunDirError(f"{config_path} does not fit this rewardgen's config: "
                          f"{str(e).splitlines()[0]}; start a new run") from e
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"resume override {item!r} is not key=value (e.g. "
                              "llm.base_url=http://127.0.0.1:8000/v1)")
        unknown = key_error(key.strip(), RewardGenConfig, value, method)
        if unknown is not None:
            raise ConfigError(f"resume override: {unknown}")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"resume override {_redact(item)!r} does not fit the config: "
                              f"{str(e).splitlines()[0]}") from e
    return cfg  # type: ignore[return-value]


def resume_main(argv: list[str] | None = None) -> None:
    """``rewardgen-resume RUN_DIR [key=value ...]``: continue a run where it stopped.

    Finished candidates are not trained again and saved LLM answers are not asked for again; the
    run's own composed config (``RUN_DIR/.hydra/config.yaml``) is reused, with optional
    ``key=value`` overrides for this resume (e.g. ``llm.base_url=...`` when the server moved).
    """
    from rewardgen.runs.store import RunStore

    parser = argparse.ArgumentParser(prog="rewardgen-resume", description=resume_main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides for this resume, e.g. llm.base_url=URL")
    args = parser.parse_args(argv)
    overrides = move_secrets_to_environment(args.overrides)
    root: Path | None = None
    try:
        store = RunStore.open(args.run_dir)
        root = store.root
        cfg = resume_config(store.root, overrides)
        missing = missing_key_line(cfg, store.events())
        if missing is not None:
            raise ConfigError(missing)
        _log_to(store.root / "rewardgen.log")
        with stop_on_ctrl_c("rewardgen-resume"):
            summary = run(cfg, store.root, resume_overrides=overrides)
    except KeyboardInterrupt:
        _stopped("rewardgen-resume", root)
    except RewardGenError as e:
        fail_in_one_line(e)
    if _all_failed(summary):
        sys.exit(1)


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train and score one reward file (or the native reward) over ``cfg.seeds``."""
    from rewardgen.cli.evaluate import evaluate_reward_file
    from rewardgen.tasks.spec import use_task_dirs

    for warning in validate(cfg):
        log.warning(warning)
    use_task_dirs(cfg.get("task_dirs"))
    return evaluate_reward_file(cfg, run_dir)


@hydra.main(config_path=CONF_DIR, config_name="eval", version_base="1.3")
def _eval_app(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = _guarded("rewardgen-eval", lambda: evaluate(cfg, run_dir), None)
    bad = [r for r in summary["results"] if r["status"] != "ok"]
    if bad:  # a rejected or failed reward is an error for scripts, not a score
        fail_in_one_line(RewardGenError(f"{len(bad)} of {len(summary['results'])} trainings did not finish "
                             f"({bad[0]['status']}: {bad[0]['reason']}); see {run_dir}"))


def eval_main() -> None:
    """``rewardgen-eval task=... reward_file=...``."""
    sys.argv[1:] = move_secrets_to_environment(sys.argv[1:])  # before Hydra saves the argv
    _check_command_line("eval", EvalConfig, "rewardgen-eval")
    _eval_app()
