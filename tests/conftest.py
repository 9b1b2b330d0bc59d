"""Shared test set-up: headless rendering, quiet logs, small configs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Never let a developer's real key or server leak into tests.
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(_var, None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) a module's tests stay on
    one worker, so a module-scoped fixture (the adversarial corpus, a trained run) is built once;
    a module may name a shared group instead (``pytestmark = pytest.mark.xdist_group("ray")``:
    one local Ray cluster at a time)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else "x"))
