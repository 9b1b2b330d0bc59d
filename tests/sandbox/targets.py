"""Worker targets for tests/sandbox: each misbehaves in one way, as generated code might.

Importable as ``tests.sandbox.targets`` inside the worker. No torch here: the suite stays fast.
"""

from __future__ import annotations

import json
import mmap
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rewardgen.runs.records import CandidateJob, CandidateResult

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def normal(job: CandidateJob) -> CandidateResult:
    return CandidateResult(status="ok", fitness=1.5, env_steps=10, wall_time_s=0.25)


def returns_dict(job: CandidateJob) -> dict:
    return {"status": "ok", "fitness": 2.0}


def sleep_forever(job: CandidateJob) -> CandidateResult:
    """Spawn a grandchild in the group and one that escapes it with setsid, then hang."""
    in_group = subprocess.Popen(SLEEPER)
    escaped = subprocess.Popen(SLEEPER, start_new_session=True)
    Path(job.out_dir, "pids.txt").write_text(f"{in_group.pid} {escaped.pid}")
    while True:
        time.sleep(1)


def leave_orphans(job: CandidateJob) -> CandidateResult:
    """Return normally but leave grandchildren running."""
    in_group = subprocess.Popen(SLEEPER)
    escaped = subprocess.Popen(SLEEPER, start_new_session=True)
    Path(job.out_dir, "pids.txt").write_text(f"{in_group.pid} {escaped.pid}")
    time.sleep(1.2)  # long enough for the parent's process-tree scan to see them
    return CandidateResult(status="ok")


def allocate_8gb(job: CandidateJob) -> CandidateResult:
    blob = bytearray(8 * 1024**3)
    return CandidateResult(status="ok", fitness=float(len(blob)))


def hog_resident_memory(job: CandidateJob) -> CandidateResult:
    """Grow the resident set through shared pages, which RLIMIT_DATA does not count."""
    chunks = []
    for _ in range(200):
        chunk = mmap.mmap(-1, 8 * 1024**2)
        chunk.write(b"x" * len(chunk))
        chunks.append(chunk)
        time.sleep(0.02)
    return CandidateResult(status="ok")


def burn_cpu(job: CandidateJob) -> CandidateResult:
    x = 0
    while True:
        x += 1


def raises(job: CandidateJob) -> CandidateResult:
    return _inner(job.seed)


def _inner(seed: int) -> CandidateResult:
    raise ValueError(f"bad seed {seed}")


def run_reward_program(job: CandidateJob) -> CandidateResult:
    """Load the job's reward program and call it once, as the training job would."""
    from rewardgen.sandbox.program import load_program

    program = load_program(job.reward_source or "", job.entry)
    program.fn(None, None, None)
    return CandidateResult(status="ok")


def print_10mb(job: CandidateJob) -> CandidateResult:
    sys.stdout.write("HEAD-OF-STDOUT\n")
    line = "y" * 1023 + "\n"
    for _ in range(10 * 1024):
        sys.stdout.write(line)
    sys.stdout.write("TAIL-OF-STDOUT\n")
    sys.stderr.write("some stderr\n")
    return CandidateResult(status="ok")


def connect(job: CandidateJob) -> CandidateResult:
    try:
        with socket.create_connection(("127.0.0.1", int(job.rl["port"])), timeout=2):
            reason = "connected"
    except OSError as e:
        reason = f"{type(e).__name__}: {e}"
    return CandidateResult(status="ok", reason=reason)


def report_env(job: CandidateJob) -> CandidateResult:
    names = list(job.rl.get("names", []))
    report = {
        "present": [n for n in names if n in os.environ],
        "env": {
            k: os.environ.get(k) for k in ("MUJOCO_GL", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
        },
        "cwd": os.getcwd(),
        "limits": {
            name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_CPU")
        },
    }
    return CandidateResult(status="ok", reason=json.dumps(report))


def exit_3(job: CandidateJob) -> CandidateResult:
    sys.stderr.write("giving up now\n")
    sys.stderr.flush()
    os._exit(3)


def killed_by_signal(job: CandidateJob) -> CandidateResult:
    os.kill(os.getpid(), 9)
    return CandidateResult(status="ok")


def write_outside(job: CandidateJob) -> CandidateResult:
    """Try to plant files next to the worker's folder and in the code base; report how it went."""
    import rewardgen

    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = {}
    targets = {"parent_write": out.parent / "planted.txt",
               "package_write": Path(rewardgen.__file__).parent / "planted.txt"}
    for key, path in targets.items():
        try:
            path.write_text("forged")
            outcomes[key] = "written"
        except OSError as e:
            outcomes[key] = f"OSError: {e}"
    (out / "probe.json").write_text(json.dumps(outcomes))
    return CandidateResult(status="failed", reason="probe only")


def probe_sandbox(job: CandidateJob) -> CandidateResult:
    """Record what the worker can do: ids, namespaces, seccomp, network, the host's processes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    probe: dict[str, object] = {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}
    probe["visible_pids"] = sum(name.isdigit() for name in os.listdir("/proc"))
    status = Path("/proc/self/status").read_text()
    probe["seccomp"] = next(line.split()[1] for line in status.splitlines()
                            if line.startswith("Seccomp:"))
    probe["unshare"] = (libc.unshare(0x40000000), ctypes.get_errno())
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    probe["setns"] = (libc.setns(fd, 0), ctypes.get_errno())
    try:
        socket.create_connection(("127.0.0.1", int(job.vision["port"])), timeout=2).close()
        probe["connect"] = "connected"
    except OSError as e:
        probe["connect"] = f"OSError: {e.errno}"
    probe["home"] = os.environ.get("HOME")
    Path(job.out_dir, "probe.json").write_text(json.dumps(probe))
    return CandidateResult(status="ok")


def sleep_forever_marked(job: CandidateJob) -> CandidateResult:
    """As sleep_forever, with the job folder in the sleepers' command lines (pids differ inside
    a pid namespace, so the test finds them by this marker)."""
    marked = [*SLEEPER, job.out_dir]
    subprocess.Popen(marked)
    pid = os.fork()
    if pid == 0:  # a double fork: the grandchild is re-parented and leaves the session
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, marked)
        os._exit(0)
    os.waitpid(pid, 0)
    Path(job.out_dir, "started").write_text("yes")
    while True:
        time.sleep(1)


def _leave(job: CandidateJob, make: Callable[[Path], None]) -> CandidateResult:
    """Leave ``make``'s shape as result.json and exit before the child writes its own."""
    make(Path(job.out_dir) / "result.json")
    os._exit(0)


def result_fifo(job: CandidateJob) -> CandidateResult:
    return _leave(job, os.mkfifo)


def result_folder(job: CandidateJob) -> CandidateResult:
    return _leave(job, lambda p: (p / "inside").mkdir(parents=True))


def result_symlink(job: CandidateJob) -> CandidateResult:
    return _leave(job, lambda p: p.symlink_to("/etc/passwd"))


def result_deep(job: CandidateJob) -> CandidateResult:
    return _leave(job, lambda p: p.write_text("[" * 200_000 + "]" * 200_000))


def result_huge_int(job: CandidateJob) -> CandidateResult:
    return _leave(job, lambda p: p.write_text('{"status": "ok", "env_steps": ' + "9" * 400 + "}"))


def result_wrong_types(job: CandidateJob) -> CandidateResult:
    return _leave(job, lambda p: p.write_text('{"status": ["ok"], "reason": {"a": 1}}'))


def log_as_folder(job: CandidateJob) -> CandidateResult:
    (Path(job.out_dir) / "worker.log" / "inside").mkdir(parents=True)
    (Path(job.out_dir) / "job.json").unlink(missing_ok=True)
    return CandidateResult(status="ok", fitness=1.0)


def deep_chain_in_cwd(job: CandidateJob) -> CandidateResult:
    """A folder chain past the recursion limit in the worker's private working directory."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    return CandidateResult(status="ok", fitness=1.0, reason=os.getcwd())
