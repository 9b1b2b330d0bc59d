"""Issue 22's OS layer, from inside: an escaped program (unrestricted Python in the real
bubblewrap sandbox, tests/adversarial/escaped.py) is not host root, sees nothing of the host it
does not need, carries no secret out of its environment and cannot fill host RAM or disk."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardgen.sandbox import bwrap
from tests.adversarial.escaped import SANDBOX, observed, run_escaped

SECRETS = {"OPENAI_APIKEY": "sk-apikey-0001", "PGPASSWORD": "pg-0002", "SSHPASS": "ssh-0003",
           "GITHUB_PAT": "ghp_0004", "DATABASE_URL": "postgres://u:p-0005@db/x",
           "OPENAI_API_KEY": "sk-0006", "AWS_SECRET_ACCESS_KEY": "aws-0007"}
HIDDEN = ("/home", "/root", "/run", "/var", "/srv", "/opt", "/mnt", "/work")


@pytest.fixture
def host_socket(tmp_path: Path) -> Iterator[str]:
    """A root-only unix socket on the host that answers 'host' to whoever connects."""
    path = str(tmp_path / "host.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen()
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"host")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_an_escaped_program_is_an_unprivileged_stranger_to_the_host(
        tmp_path: Path, host_socket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "secret.yaml").write_text("llm:\n  api_key: sk-run-dir-0008\n")
    result, cand = run_escaped("identity", tmp_path, vision={"socket": host_socket})
    assert result.status == "ok", result.reason  # contained, and it still trained
    seen = observed(cand)
    host_uid = (cand / "train" / "owned_by_me").stat().st_uid
    if os.geteuid() == 0:
        assert host_uid == bwrap.SANDBOX_UID != 0  # the host sees nobody, not root
        assert seen["uid"] == seen["euid"] == bwrap.SANDBOX_UID and seen["groups"] == []
    else:
        assert host_uid == os.geteuid()
    assert seen["shadow"][0] == "error"  # /etc/shadow: not there at all
    for folder in HIDDEN:  # absent, or only the empty mount-point path to a bound folder
        state, listing = seen["dirs"][folder]
        assert state == "error" or all(not name.startswith(".ssh") for name in listing), folder
    assert seen["dirs"]["/home"][0] == "error" and seen["dirs"]["/run"][0] == "error"
    assert seen["dirs"]["/var"][0] == "error"
    assert "shadow" not in seen["dirs"]["/etc"][1] and "passwd" in seen["dirs"]["/etc"][1]
    assert seen["socket"] == ["error", errno.ENOENT]  # the host's path socket is not reachable
    assert seen["neighbours"] == ["ok", ["cand"]]  # only the mount-point path to its own folder
    assert seen["secret_next_door"][0] == "error"  # the run directory's files are not there
    text = json.dumps(seen["environ"])
    assert not [name for name, value in SECRETS.items() if value in text or name in text]


def test_identity_as_an_ordinary_user(tmp_path: Path) -> None:
    """Started by an ordinary user, the sandbox is that user (never root) and sees the same
    nothing. Run here by switching to uid 1000 before bwrap, with the system's Python."""
    if os.geteuid() != 0:
        pytest.skip("switching to an ordinary user needs root; this run is one already")
    user = 1000
    out = Path(tempfile.mkdtemp(prefix="rewardgen-user-"))  # pytest's folders are root's only
    out.chmod(0o755)
    os.chown(out, user, user)
    probe = (
        "import json, os\n"
        "def t(f):\n"
        "    try: return ['ok', f()]\n"
        "    except OSError as e: return ['error', e.errno]\n"
        "open(os.path.join(OUT, 'mine'), 'w').write('x')\n"
        "print(json.dumps({'uid': os.getuid(), 'owner': os.stat(os.path.join(OUT, 'mine')).st_uid, 'shadow': t(lambda: open('/etc/shadow').read()),"
        " 'root': t(lambda: os.listdir('/root')), 'home': t(lambda: os.listdir('/home'))}))\n"
    ).replace("OUT", repr(str(out)))
    fd = bwrap.filter_fd()
    cmd, fds = bwrap.command(["/usr/bin/python3", "-c", probe], readable=[],
                             writable=[str(out)], seccomp_fd=fd, run_as=(user, user))
    try:
        proc = subprocess.run(cmd, pass_fds=(fd, *fds), capture_output=True, text=True,
                              timeout=30, user=user, group=user, extra_groups=[],
                              env={"PATH": "/usr/bin:/bin"})
    finally:
        for handle in (fd, *fds):
            os.close(handle)
        shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0 and "setting up uid map" in proc.stderr.lower():
        pytest.skip(f"unprivileged user namespaces are off here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[0])
    assert seen["uid"] == user and seen["owner"] == user
    assert seen["shadow"][0] == seen["root"][0] == seen["home"][0] == "error"


def test_private_tmp_and_shm_are_bounded(tmp_path: Path) -> None:
    cfg = dataclasses.replace(SANDBOX, tmp_mb=64, shm_mb=16)
    result, cand = run_escaped("fill_tmp", tmp_path, cfg=cfg)
    assert result.status == "ok", result.reason
    seen = observed(cand)
    assert 0 < seen["tmp_mb"] <= 64 and 0 < seen["shm_mb"] <= 16


@pytest.mark.parametrize(("payload", "reason"), [
    ("flood_folder", "wrote more than 500 files to its output folder"),
    ("deep_folders", "nested folders deeper than 16 levels"),
])
def test_a_flooded_output_folder_ends_the_candidate(tmp_path: Path, payload: str,
                                                    reason: str) -> None:
    cfg = dataclasses.replace(SANDBOX, output_files=500, timeout_s=60)
    try:
        result, _ = run_escaped(payload, tmp_path, cfg=cfg)
    finally:  # GNU rm removes a 3000-deep chain iteratively; pytest's own cleanup recurses
        subprocess.run(["rm", "-rf", str(tmp_path / "cand")], check=False)
    assert result.status == "failed" and reason in result.reason, result.reason
