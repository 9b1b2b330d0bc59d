"""Layer 3 of isolation, parent side: run one candidate job in a limited, disposable process.

The worker is ``python -m rewardgen.sandbox.child`` started in its own session (so one signal
reaches its whole process tree), in a private temporary working directory, with a sanitised
environment, resource limits and (where the OS allows) no network. A worker that loads reward
code (``sandboxed=True``) runs inside bubblewrap (:mod:`.bwrap`) with ``sandbox.backend=bwrap``:
its own user, pid and network namespaces, a read-only root, only its output folder writable and
a seccomp filter. Its output is captured with a cap; a wall-clock timeout kills the tree. Every
file the worker wrote is read back as hostile input (:mod:`rewardgen.runs.untrusted`), and the
parent's own files of a sandboxed worker (its job, its log) lie beside its folder, not in it.
Whatever the candidate does, the caller gets a :class:`CandidateResult` back: a failing
candidate is a result, never a crash of the loop.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from rewardgen.config import SandboxConfig
from rewardgen.errors import SandboxError
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text
from rewardgen.runs.records import WORKER_DIRS, CandidateResult, WorkerJob
from rewardgen.runs.untrusted import UnsafeFileError, load_json, remove_tree
from rewardgen.sandbox import bwrap, limits, quota
from rewardgen.sandbox.child import MEMORY_HINTS
from rewardgen.sandbox.contract import RESULT_LIMIT_MB, one_line, tail
from rewardgen.sandbox.process_tree import Capture, ProcessTree
from rewardgen.sandbox.program import source_sha256

log = logging.getLogger(__name__)

DEFAULT_TARGET = "rewardgen.worker.train:run_candidate"
POLL_S = 0.2  # how often the worker's exit and the deadline are checked
SCAN_S = 1.0  # how often its process tree is recorded (and, on GPU, its memory summed)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# The only variables of the parent's environment a worker sees (plus what rewardgen sets). A
# name pattern cannot know every secret (OPENAI_APIKEY, PGPASSWORD, SSHPASS, DATABASE_URL...).
ENV_ALLOWLIST = frozenset({
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "TERM",
    "MUJOCO_GL", "PYOPENGL_PLATFORM", "EGL_PLATFORM", "__EGL_VENDOR_LIBRARY_FILENAMES",
    "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "NVIDIA_DRIVER_CAPABILITIES",
    "JAX_PLATFORMS", "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_ALLOCATOR",
    "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PYTHONFAULTHANDLER",
    "REWARDGEN_TASK_DIRS", *THREAD_VARS,
})
GPU_MEMORY_VAR = "REWARDGEN_GPU_MEMORY_FRACTION"  # read by the child (torch) and mapped for XLA
DEFAULT_GPU_MEMORY_FRACTION = 0.9
_warned_network = False
STOPPED = "stopped by the user"
CANCELLED = "cancelled by its caller"
STOP = threading.Event()  # set by request_stop(): every running worker's tree is killed


def request_stop() -> None:
    """End every running worker within one poll (Ctrl-C): their results say :data:`STOPPED` and
    write no result.json, so a resumed run trains them again. Cleared by the next run."""
    STOP.set()


def sanitised_env(gpu: str | None, extra: Mapping[str, str] | None = None,
                  gpu_memory_fraction: float | None = None) -> dict[str, str]:
    """The worker's environment: the parent's :data:`ENV_ALLOWLIST` variables, nothing else.

    Generated code can read its environment; a secret there is one exception message away from
    the next prompt or a log, so the environment is an allowlist, not a filter. Thread counts
    default to 1 because candidates already run in parallel. ``extra`` is set last (a vision
    method's labeller key: never for workers that run generated code).
    """
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWLIST}
    env.setdefault("PATH", os.defpath)
    env.setdefault("MUJOCO_GL", "egl")
    env["CUDA_VISIBLE_DEVICES"] = gpu or ""
    for name in THREAD_VARS:
        env.setdefault(name, "1")
    if gpu:
        fraction = f"{gpu_memory_fraction or DEFAULT_GPU_MEMORY_FRACTION:.3f}"
        env[GPU_MEMORY_VAR] = env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def worker_owned(out_dir: str | Path, sandboxed: bool) -> bool:
    """Whether the worker owns ``out_dir``: a sandboxed worker's folder, or any worker's
    ``train/`` (:data:`WORKER_DIRS`), which the parent reads as hostile and never writes."""
    return sandboxed or Path(out_dir).name in WORKER_DIRS


def job_files(out_dir: str | Path, sandboxed: bool) -> tuple[Path, Path]:
    """Where the parent writes a worker's job and its captured output: ``(job.json, log)``.

    A worker can write its whole folder (a ``worker.log`` made a folder, a job file replaced),
    so for a folder the worker owns (:func:`worker_owned`) the parent keeps its own files beside
    it: ``cand_XX/train.job.json`` and ``cand_XX/train.worker.log`` for ``cand_XX/train/``. A
    trusted worker's folder holds them (``evaluation/job.json``, ``evaluation/worker.log``).
    """
    out_dir = Path(out_dir)
    if worker_owned(out_dir, sandboxed):
        return (out_dir.parent / f"{out_dir.name}.job.json",
                out_dir.parent / f"{out_dir.name}.worker.log")
    return out_dir / "job.json", out_dir / "worker.log"


def _discard(path: Path) -> None:
    """Remove what a worker left at ``path`` (a file, a link, a folder), or log why not."""
    try:
        remove_tree(path)
    except UnsafeFileError as e:
        log.warning("%s: %s", path.parent.name, e)


def _preexec(cfg: SandboxConfig, gpu: bool, network_report_fd: int | None) -> Callable[[], None]:
    def run() -> None:
        if network_report_fd is not None and not limits.enter_network_namespace():
            os.write(network_report_fd, limits.network_failure_reason.encode()[:4000])
        limits.apply_limits(cfg, gpu=gpu)

    return run


def _task_paths(task: str, env: Mapping[str, str]) -> list[str]:
    """Files and folders a worker reads its task from (a task path, the task search folders)."""
    paths = [p for p in env.get("REWARDGEN_TASK_DIRS", "").split(os.pathsep) if p]
    if os.sep in task or task.endswith((".yaml", ".yml")):
        paths.append(str(Path(task).expanduser().resolve().parent))
    return [p for p in paths if os.path.exists(p)]


def _give_to_sandbox(folder: Path) -> None:
    """Started as root, the sandbox runs as :data:`bwrap.SANDBOX_UID`: hand it its own folder
    (only the folder; what the parent put inside stays root's and read-only to it)."""
    if bwrap.starts_as_root():
        os.chown(folder, bwrap.SANDBOX_UID, bwrap.SANDBOX_UID)
        folder.chmod(0o755)


def _warn_network(reason: str) -> None:
    global _warned_network
    if not _warned_network:
        log.warning("candidate workers run WITH network access: %s", reason)
        _warned_network = True
    else:
        log.debug("no network namespace: %s", reason)


CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE")
_SIGNAL_CODES = {-int(sig) for sig in signal.Signals}
REWARD_TARGETS = (DEFAULT_TARGET, "rewardgen.worker.score:")  # workers that run reward code


def death_reason(returncode: int, stderr: str, cfg: SandboxConfig,
                 runs_reward: bool = False) -> str:
    """One line saying how a worker that left no result died.

    ``runs_reward``: the worker ran a reward program, so an interpreter crash is its doing (the
    rest of the worker, SB3 and MuJoCo, does not crash on its own).
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if returncode > 128 and -(returncode - 128) in _SIGNAL_CODES:  # bwrap: 128 + the signal
        returncode = 128 - returncode
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            return "killed by SIGKILL (memory or CPU limit?)"
        if name == "SIGXCPU":
            return f"exceeded the CPU time limit of {cfg.cpu_time_s} s (SIGXCPU)"
        if name == "SIGXFSZ":
            return f"exceeded the file size limit of {cfg.max_file_size_mb} MB (SIGXFSZ)"
        if runs_reward and name in CRASH_SIGNALS:
            return (f"killed by {name}: the reward program crashed the Python interpreter (deep "
                    "nesting, e.g. iterators or containers wrapped thousands of times, overflows "
                    "its C stack); build no deep structures and keep the program flat")
        return f"killed by {name}"
    if any(hint in last for hint in ("MemoryError", *MEMORY_HINTS)):
        return f"exceeded the memory limit of {cfg.memory_mb} MB"
    if returncode == 0:
        return "the worker exited without writing result.json"
    reason = f"exit code {returncode}" + (f": {last}" if last else "")
    return reason if len(reason) <= 300 else reason[:297] + "..."


def run_isolated(
    job: WorkerJob,
    cfg: SandboxConfig,
    *,
    gpu: str | None = None,
    target: str = DEFAULT_TARGET,
    extra_env: Mapping[str, str] | None = None,
    sandboxed: bool = True,
    cancel: threading.Event | None = None,
) -> CandidateResult:
    """Run ``target(job)`` in an isolated worker process and return its result.

    Args:
        job: the candidate; the worker writes ``job.out_dir`` (result.json); the job file and
            the worker's log lie where :func:`job_files` says.
        cfg: limits, timeout, network policy and output cap.
        gpu: the GPU the worker may see (``CUDA_VISIBLE_DEVICES``), None for CPU only.
        target: ``module:function`` called with the job in the worker.
        extra_env: variables set in the worker after sanitising (e.g. a VLM key for a method
            that runs no generated code); never put secrets here for code-writing methods.
        sandboxed: the target loads reward code: with ``sandbox.backend=bwrap`` it runs inside
            bubblewrap with only ``job.out_dir`` writable. Trusted targets (the evaluator,
            judges) pass False and keep the rlimits, timeout and network namespace.
        cancel: set by the caller to end this one worker (its tree is killed within one poll;
            the result says :data:`CANCELLED`), e.g. a candidate pruned by ``loop.schedule``.

    Returns:
        The worker's result, or a ``failed``/``timeout`` result saying how it died.

    Raises:
        SandboxError: only when the worker cannot be started at all.
    """
    out_dir = Path(job.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    job = dataclasses.replace(job, out_dir=str(out_dir))
    job_path, log_path = job_files(out_dir, sandboxed)
    atomic_write_json(job_path, job.to_dict()).chmod(0o644)  # read by the sandbox's own uid
    result_path = out_dir / "result.json"
    _discard(result_path)
    use_gpu = bool(gpu)
    in_bwrap = sandboxed and cfg.backend == "bwrap"
    want_netns = not cfg.network and not in_bwrap  # bwrap brings its own network namespace
    report_r, report_w = os.pipe() if want_netns else (None, None)
    workdir = tempfile.mkdtemp(prefix="rewardgen-worker-")
    env = sanitised_env(gpu, extra_env, cfg.gpu_memory_fraction)
    env["TMPDIR"] = workdir
    cmd = [sys.executable, "-m", "rewardgen.sandbox.child", str(job_path), target]
    seccomp_fd: int | None = None
    inherited: list[int] = []
    if in_bwrap:
        seccomp_fd = bwrap.filter_fd()
        env["TMPDIR"] = "/tmp"
        _give_to_sandbox(out_dir)
        try:
            cmd, inherited = bwrap.command(
                cmd, readable=[*bwrap.worker_paths(target, _task_paths(job.task, env)),
                               str(job_path)],  # the job, beside the folder it may write
                writable=[str(out_dir)], seccomp_fd=seccomp_fd, gpu=gpu, network=cfg.network,
                tmp_mb=cfg.tmp_mb, shm_mb=cfg.shm_mb)
        except BaseException:
            os.close(seccomp_fd)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=() if seccomp_fd is None else (seccomp_fd, *inherited),
            preexec_fn=_preexec(cfg, use_gpu, report_w),  # noqa: PLW1509 - the point of it
        )
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise SandboxError(
            f"cannot start the candidate worker ({' '.join(cmd[:3])}): {e}; check the sandbox "
            f"limits (memory_mb={cfg.memory_mb}, max_open_files={cfg.max_open_files})"
        ) from e
    finally:
        if report_w is not None:
            os.close(report_w)
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        for fd in inherited:
            os.close(fd)
    if report_r is not None:
        reason = os.read(report_r, 4096).decode(errors="replace")
        os.close(report_r)
        if reason:
            _warn_network(reason)
    assert proc.stdout is not None and proc.stderr is not None
    cap = max(2, cfg.output_limit_kb * 1024 // 2)
    out, err = Capture(proc.stdout, cap), Capture(proc.stderr, cap)
    tree, killed_reason, status = ProcessTree(proc.pid), "", "failed"
    deadline, next_scan = start + cfg.timeout_s, start
    try:
        while True:
            try:
                returncode = proc.wait(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pass
            now, rss = time.monotonic(), 0.0
            over = ""
            if now >= next_scan:
                if use_gpu:
                    rss = tree.rss_mb()  # records the tree too
                else:
                    tree.scan()
                if sandboxed:
                    over = quota.over_limit(out_dir, cfg.output_mb, cfg.output_files)
                next_scan = now + SCAN_S
            if STOP.is_set():
                killed_reason = STOPPED
            elif cancel is not None and cancel.is_set():
                killed_reason = CANCELLED
            elif now >= deadline:
                status = "timeout"
                killed_reason = f"exceeded the wall-clock limit of {cfg.timeout_s:g} s"
            elif over:
                killed_reason = over
            elif rss > cfg.memory_mb:
                killed_reason = (
                    f"exceeded the memory limit of {cfg.memory_mb} MB (resident {rss:.0f} MB)"
                )
            if killed_reason:
                tree.kill()
                returncode = proc.wait()
                break
    finally:
        tree.kill()  # grandchildren left behind, even after a clean exit
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for capture in (out, err):
            capture.thread.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
        _discard(Path(workdir))  # the worker's cwd and TMPDIR without bwrap: any depth
    wall = time.monotonic() - start
    stdout, stderr = out.text(), err.text()
    atomic_write_text(
        log_path,
        f"== stdout ({out.total} bytes) ==\n{stdout}\n== stderr ({err.total} bytes) ==\n{stderr}\n",
    )
    source = getattr(job, "reward_source", None)  # training and scoring jobs carry one
    runs_reward = bool(source) and target.startswith(REWARD_TARGETS)
    result = _collect(result_path, killed_reason, status, returncode, stderr, cfg, runs_reward)
    if not result.wall_time_s:
        result.wall_time_s = wall
    if result.seed is None:
        result.seed = job.seed
    if result.reward_sha256 is None and source:
        result.reward_sha256 = source_sha256(source)
    keep = not worker_owned(out_dir, sandboxed)  # never into a worker's own folder
    if keep and not result_path.exists() and killed_reason != STOPPED:
        atomic_write_json(result_path, result.to_dict())
    log.info("candidate %s: %s %s (%.1f s)", out_dir.name, result.status, result.reason, wall)
    return result


def _collect(
    result_path: Path,
    killed_reason: str,
    status: str,
    returncode: int,
    stderr: str,
    cfg: SandboxConfig,
    runs_reward: bool = False,
) -> CandidateResult:
    """The worker's result.json read as hostile input; whatever is wrong with it is a result."""
    if killed_reason:
        _discard(result_path)
        return CandidateResult(status=status, reason=killed_reason, traceback=tail(stderr))
    if not (result_path.exists() or result_path.is_symlink()):
        return CandidateResult(
            status="failed", reason=death_reason(returncode, stderr, cfg, runs_reward),
            traceback=tail(stderr)
        )
    try:
        # NaN passes as a float: the reported view drops it, selection refuses a non-finite fitness
        raw = load_json(result_path, RESULT_LIMIT_MB, under=result_path.parent, finite=False)
        if not isinstance(raw, dict):
            raise UnsafeFileError(f"result.json holds a {type(raw).__name__}, not an object")
        return CandidateResult.from_dict(raw)
    except UnsafeFileError as e:
        reason = f"the worker wrote an unusable result.json ({e})"
    except Exception as e:  # noqa: BLE001 - any field of the wrong type or value
        reason = f"the worker wrote an unreadable result.json: {type(e).__name__}: {e}"
    _discard(result_path)
    return CandidateResult(status="failed", reason=one_line(reason), traceback=tail(stderr))
