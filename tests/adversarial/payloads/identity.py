"""Who am I, and what of the host can I reach? Reads the sandbox's identity from inside.

Records the uid/gid/groups and the uid map, tries the host's secrets (/etc/shadow), lists the
homes and system folders a worker never needs, connects to a host unix socket by path (a
network namespace does not cover path sockets), reads the run directory next to its own folder
and dumps its environment. Leaves a file in its folder so the test sees its host owner.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from rewardgen.runs.records import CandidateJob
from tests.adversarial.escaped import write_observed

PROBED_DIRS = ("/home", "/root", "/run", "/var", "/srv", "/opt", "/mnt", "/work", "/etc")


def _try(fn):  # type: ignore[no-untyped-def]
    try:
        return ["ok", fn()]
    except OSError as e:
        return ["error", e.errno]


def payload(job: CandidateJob) -> None:
    out = Path(job.out_dir)
    (out / "owned_by_me").write_text("x")
    seen: dict[str, object] = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "groups": os.getgroups(), "uid_map": Path("/proc/self/uid_map").read_text(),
        "shadow": _try(lambda: Path("/etc/shadow").read_text()[:20]),
        "dirs": {d: _try(lambda d=d: sorted(os.listdir(d))) for d in PROBED_DIRS},
        "environ": dict(os.environ),
        "neighbours": _try(lambda: sorted(os.listdir(out.parent.parent))),
        "secret_next_door": _try(lambda: (out.parent.parent / "secret.yaml").read_text()),
    }  # fmt: skip
    path = str(job.vision.get("socket", ""))

    def connect() -> str:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(path)
            return client.recv(64).decode()

    seen["socket"] = _try(connect)
    write_observed(job, **seen)
