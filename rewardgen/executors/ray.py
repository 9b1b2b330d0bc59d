"""Run candidates as Ray tasks on a cluster (``executor=ray``).

Each candidate is one Ray task that reserves ``executor.cpus_per_candidate`` CPUs and
``executor.gpus_per_candidate`` GPUs. The task runs the same isolated worker as the local
executor (:func:`rewardgen.executors.pipeline.run_job`: sandboxed training, trusted evaluation), with its output directory on the
node's local disk; when it ends, the artifacts (result.json, worker.log, policy.zip, tb/,
progress.json, ...) travel back to the driver as one compressed archive and are unpacked into
the run directory. The driver never shares a file system with the nodes.

A task that Ray loses (its worker process or its node died, the object was lost, Ray's own
out-of-memory killer struck) becomes a ``failed`` candidate whose reason names what happened;
the run goes on with the others.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors.base import OnDone, Pruner
from rewardgen.executors.local import pinned_device
from rewardgen.executors.pipeline import run_job
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateResult, WorkerJob, job_from_dict
from rewardgen.runs.untrusted import UnsafeFileError, read_regular_file, remove_tree, walk
from rewardgen.sandbox.worker import DEFAULT_TARGET

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rewardgen[ray]'"
REASON_CHARS = 300


# ---------------------------------------------------------------- on the node (inside the task)
PACK_DEPTH = 8  # folders packed below the candidate's (train/tb/PPO_1/ is 3 deep)
PACK_ENTRIES = 100_000
PACK_FILE_MB = 512.0


def pack_dir(directory: Path) -> bytes:
    """Every regular file under ``directory`` as a gzip'd tar archive (paths relative to it).

    The folder holds what the sandboxed worker wrote, so it is walked as hostile input
    (:func:`rewardgen.runs.untrusted.walk`: no recursion, no links, depth and count caps) and
    each file is read as a plain, bounded file; what is left out is logged.
    """
    found = walk(directory, max_depth=PACK_DEPTH, max_entries=PACK_ENTRIES)
    for line in found.skipped:
        log.warning("not sent back from the node: %s", line)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in sorted(found.files):
            try:
                data = read_regular_file(directory / rel, PACK_FILE_MB, under=directory)
            except UnsafeFileError as e:
                log.warning("not sent back from the node: %s", e)
                continue
            info = tarfile.TarInfo(str(rel))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_into(blob: bytes, directory: Path) -> list[str]:
    """Extract an archive made by :func:`pack_dir`, refusing links and paths that leave it.

    The files were written next to untrusted code, so nothing in the archive is trusted to
    stay inside ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    names = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not member.isfile() or not target.is_relative_to(root) or target == root:
                log.warning("ignoring archive member %r (not a plain file inside %s)", member.name, root)
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            names.append(member.name)
    return names


def run_candidate_on_node(job_dict: dict[str, Any], sandbox_dict: dict[str, Any], target: str,
                          use_gpu: bool, pruner: Any = None) -> tuple[dict[str, Any], bytes]:
    """The body of one Ray task: train the candidate in an isolated worker on this node.

    ``pruner`` is the driver's ``loop.schedule`` pruner as a Ray actor (None: no schedule); it
    is asked at each trusted evaluation point, and a pruned candidate's worker is killed here.

    Returns:
        The result as a dict and the packed artifacts of the node-local output directory.
    """
    import os

    job = job_from_dict(job_dict)
    gpu = (os.environ.get("CUDA_VISIBLE_DEVICES") or None) if use_gpu else None  # set by Ray
    scratch = Path(tempfile.mkdtemp(prefix="rewardgen-ray-"))
    try:
        out_dir = scratch / (Path(job.out_dir).name or "candidate")
        node_job = pinned_device(dataclasses.replace(job, out_dir=str(out_dir)), gpu)
        prune = None
        if pruner is not None:
            import ray

            key = Path(job.out_dir).name
            prune = lambda curve: ray.get(pruner.report.remote(key, curve))  # noqa: E731
        result = run_job(node_job, SandboxConfig(**sandbox_dict), gpu=gpu, target=target,
                         prune=prune)
        return result.to_dict(), pack_dir(out_dir)
    finally:
        try:
            remove_tree(scratch)  # any depth the worker built (shutil.rmtree would recurse)
        except UnsafeFileError as e:
            log.warning("node scratch folder left behind: %s", e)


# ---------------------------------------------------------------- on the driver
def _plain(cfg: Any) -> dict[str, Any]:
    """A config section as a plain dict (it crosses to other machines)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return dict(cfg)


def check_address(address: str | None) -> str | None:
    """``None``/``local``/``auto``/``ray://host:port``/``host:port``, else a ConfigError."""
    if address in (None, "", "local", "auto") or str(address).startswith("ray://"):
        return address or None
    host, _, port = str(address).rpartition(":")
    if host and port.isdigit():
        return address
    raise ConfigError(
        f"executor.address={address!r} is not a Ray address; use auto (the cluster this machine "
        f"belongs to), local (start one here), ray://HEAD:10001 (Ray client) or HEAD:6379"
    )


def no_cluster_reason(address: str | None, error: BaseException) -> str:
    """One line for a cluster that cannot be joined, naming the one-machine fix first (Ray's own
    text tells a Ray user to set ``--address`` or ``RAY_ADDRESS``, which rewardgen does not read).
    """
    detail = " ".join(str(error).split("Please specify")[0].split())
    detail = detail if len(detail) <= 120 else detail[:117] + "..."
    return (f"executor=ray cannot join a Ray cluster at executor.address={address}: use "
            "executor.address=local to start a one-machine cluster here, or start one with "
            f"`ray start --head` and keep executor.address=auto (Ray said: {detail})")


def lost_reason(error: BaseException) -> str:
    """One line saying how Ray lost a candidate's task."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[0] if lines else ""
    if type(error).__name__ == "RayTaskError" and getattr(error, "cause", None) is not None:
        cause = error.cause  # type: ignore[attr-defined]
        detail = f"{type(cause).__name__}: {cause}".splitlines()[0]
    reason = f"the Ray task was lost ({type(error).__name__}): {detail}"
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 3] + "..."


class RayExecutor:
    """Each candidate a Ray task on an existing (or local) Ray cluster.

    Args:
        cfg: ``address`` (auto | local | ray://host:port | host:port), ``cpus_per_candidate``,
            ``gpus_per_candidate``, ``max_retries``; ``workers`` caps the candidates in flight
            (None: as many as the cluster has room for; Ray queues the rest).
        sandbox: limits of each isolated worker, applied on its node.
        rl: unused (sizing comes from the cluster); kept for the common constructor.
        device: the training device; ``cuda:N`` becomes ``cuda`` inside the task's GPU set.
        target: the ``module:function`` each worker runs (tests swap it).
    """

    def __init__(self, cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str,
                 *, target: str = DEFAULT_TARGET) -> None:
        self.address = check_address(cfg.address)
        self.cpus = float(cfg.cpus_per_candidate)
        self.gpus = float(cfg.gpus_per_candidate)
        self.max_retries = int(cfg.max_retries)
        if self.cpus <= 0 or self.gpus < 0 or self.max_retries < 0:
            raise ConfigError(
                f"executor.cpus_per_candidate={self.cpus:g} must be > 0, gpus_per_candidate="
                f"{self.gpus:g} and max_retries={self.max_retries} must be >= 0"
            )
        self.max_in_flight = int(cfg.workers) if cfg.workers else None
        self.sandbox = _plain(sandbox)
        self.device = device
        self.target = target
        self._ray: Any = None

    # ------------------------------------------------------------------ cluster
    def connect(self) -> Any:
        """Join the cluster (once per process) and check it can hold one candidate."""
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError as e:
            raise ConfigError(f"executor=ray needs Ray, which is not installed: {INSTALL_HINT}") from e
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False}
            if self.address in (None, "local"):
                kwargs["include_dashboard"] = False
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(no_cluster_reason(self.address, e)) from e
        resources = ray.cluster_resources()
        for name, need in (("CPU", self.cpus), ("GPU", self.gpus)):
            if need > float(resources.get(name, 0.0)):
                raise ConfigError(
                    f"executor.{name.lower()}s_per_candidate={need:g} but the Ray cluster has "
                    f"{resources.get(name, 0):g} {name}s in all; lower it or add nodes"
                )
        log.info("ray executor: cluster %s, %g CPU / %g GPU per candidate",
                 {k: v for k, v in resources.items() if k in ("CPU", "GPU")}, self.cpus, self.gpus)
        self._ray = ray
        return ray

    @property
    def workers(self) -> int:
        """Candidates that can train at once: ``executor.workers``, else what the cluster holds."""
        if self.max_in_flight:
            return self.max_in_flight
        resources = self.connect().cluster_resources()
        slots = float(resources.get("CPU", 1.0)) // self.cpus
        if self.gpus:
            slots = min(slots, float(resources.get("GPU", 0.0)) // self.gpus)
        return max(1, int(slots))

    # ------------------------------------------------------------------ one batch
    def _submit(self, remote: Any, job: WorkerJob, target: str, sandbox: dict[str, Any],
                actor: Any = None) -> Any:
        return remote.options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
            name=f"rewardgen:{Path(job.out_dir).parent.name}/{Path(job.out_dir).name}",
        ).remote(job.to_dict(), sandbox, target, self.gpus > 0, actor)

    def _collect(self, ref: Any, job: WorkerJob, started: float) -> CandidateResult:
        """The task's result with its artifacts unpacked into ``job.out_dir``."""
        ray = self._ray
        out_dir = Path(job.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            result_dict, blob = ray.get(ref)
        except ray.exceptions.RayError as e:
            result = CandidateResult(status="failed", reason=lost_reason(e),
                                     traceback=str(e)[-4000:], seed=job.seed,
                                     wall_time_s=time.monotonic() - started)
            log.warning("candidate %s: %s", out_dir.name, result.reason)
            atomic_write_json(out_dir / "result.json", result.to_dict())
            return result
        unpack_into(blob, out_dir)
        atomic_write_json(out_dir / "job.json", job.to_dict())  # the driver's paths, not the node's
        result = CandidateResult.from_dict(result_dict)
        log.info("candidate %s: %s %s (%.1f s on a Ray node)", out_dir.name, result.status,
                 result.reason, result.wall_time_s)
        return result

    def run(self, jobs: Sequence[WorkerJob], on_done: OnDone | None = None, *,
            target: str | None = None, sandbox: Any = None,
            extra_env: Any = None, pruner: Pruner | None = None) -> list[CandidateResult]:
        """Run every job as a Ray task; ``on_done(index, result)`` as each one comes back.

        ``target`` and ``sandbox`` override the executor's for this batch (judges, scorers);
        ``extra_env`` is not sent to nodes (it holds keys): vision runs use the local executor.
        ``pruner`` (``loop.schedule``) is rebuilt as one Ray actor for the batch, which every
        candidate's task asks at its trusted evaluation points.

        Returns:
            The results in job order.
        """
        if not jobs:
            return []
        if extra_env:
            raise ConfigError("executor=ray does not carry extra_env (API keys) to nodes; run "
                              "method=vlm_preference with executor=local")
        target = target or self.target
        sandbox_dict = _plain(sandbox) if sandbox is not None else self.sandbox
        ray = self.connect()
        remote = ray.remote(run_candidate_on_node)
        results: list[CandidateResult | None] = [None] * len(jobs)
        queue = list(range(len(jobs)))
        in_flight: dict[Any, int] = {}
        started: dict[int, float] = {}
        limit = self.max_in_flight or len(jobs)
        actor = None
        if pruner is not None and target == DEFAULT_TARGET:
            actor = ray.remote(num_cpus=0)(type(pruner)).remote(**pruner.spec())
        try:
            while queue or in_flight:
                while queue and len(in_flight) < limit:
                    i = queue.pop(0)
                    started[i] = time.monotonic()
                    in_flight[self._submit(remote, jobs[i], target, sandbox_dict, actor)] = i
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    i = in_flight.pop(ref)
                    result = results[i] = self._collect(ref, jobs[i], started[i])
                    if actor is not None:
                        actor.finish.remote(Path(jobs[i].out_dir).name, result.status,
                                            result.evaluations)
                    if on_done is not None:
                        on_done(i, result)
        finally:
            # Ctrl-C or an error in on_done: stop the rest. A plain cancel interrupts the task's
            # thread, so run_isolated's cleanup still kills the worker's process tree.
            for ref in in_flight:
                ray.cancel(ref)
            if actor is not None:
                ray.kill(actor)
        return [r for r in results if r is not None]
