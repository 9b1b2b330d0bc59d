"""Locate the data folders (conf/, prompts/, envs/) in editable and wheel installs alike.

In a wheel they are mapped into the package (``rewardgen/conf``); in a source checkout or an
editable install they sit at the repository root next to the package.
"""

from __future__ import annotations

from pathlib import Path

from rewardgen.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCE_NAMES = ("conf", "prompts", "envs")


def resource_dir(name: str) -> Path:
    """Return the directory holding the named resource folder.

    Args:
        name: one of ``conf``, ``prompts``, ``envs``.
    """
    if name not in RESOURCE_NAMES:
        raise ConfigError(f"unknown resource folder {name!r}; expected one of {RESOURCE_NAMES}")
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"rewardgen's {name}/ folder is missing next to {_PACKAGE_DIR}; reinstall the package"
    )
