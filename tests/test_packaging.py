"""The wheel ships conf/, prompts/ and envs/ inside the package, and finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("rewardgen-*.whl")
    return path


def test_wheel_contains_resources_inside_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("conf", "prompts", "envs"):
        shipped = {n for n in names if n.startswith(f"rewardgen/{folder}/")}
        on_disk = {f"rewardgen/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        assert on_disk and on_disk <= shipped, f"{folder}/ missing from the wheel: {on_disk - shipped}"
    assert "rewardgen/py.typed" in names
    assert not any(n.startswith(("tests/", "conf/", "envs/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("rewardgen =", "rewardgen-eval =", "rewardgen-tasks ="):
        assert script in text


def test_installed_wheel_finds_its_resources(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(target), str(wheel)], check=True)
    code = ("import rewardgen.resources as r, rewardgen.tasks.spec as t; "
            "print(r.resource_dir('conf')); print(len(t.task_names()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, check=True)
    conf_dir, n_tasks = out.stdout.split()
    assert Path(conf_dir) == target / "rewardgen" / "conf"
    assert int(n_tasks) >= 1
