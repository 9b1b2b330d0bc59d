"""Policy weights across the trust boundary: plain tensors in safetensors files, never a pickle.

The untrusted training worker writes ``checkpoints/<timesteps>.safetensors`` (the policy's
``state_dict``) at every evaluation point; the trusted evaluator reads them. Everything about the
folder is hostile input to the reader: names are matched exactly, links and special files are
refused, sizes and counts are capped, and the bytes go to safetensors' parser (no code runs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rewardgen.runs.untrusted import (
    MAX_ENTRIES,
    TooManyEntriesError,
    UnsafeFileError,
    list_dir,
    read_regular_file,
)

if TYPE_CHECKING:
    import torch

CHECKPOINT_DIR = "checkpoints"
SUFFIX = ".safetensors"
NAME = re.compile(r"^(\d{1,12})\.safetensors$")
MAX_CHECKPOINT_MB = 512
MAX_CHECKPOINTS = 1000


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed or does not fit the policy."""


def checkpoint_path(folder: str | Path, timesteps: int) -> Path:
    return Path(folder) / f"{int(timesteps):012d}{SUFFIX}"


def save_weights(policy: torch.nn.Module, folder: str | Path, timesteps: int) -> Path:
    """Write the policy's parameters and buffers (contiguous CPU tensors), atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in policy.state_dict().items()}
    path = checkpoint_path(folder, timesteps)
    tmp = folder / f".{path.name}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    return path


def list_checkpoints(folder: str | Path, max_count: int = MAX_CHECKPOINTS) -> list[tuple[int, Path]]:
    """(timesteps, path) of the checkpoints in ``folder``, in training order.

    Only names of the exact form ``<digits>.safetensors`` count; anything else in the folder
    (written by untrusted code) is ignored.

    Raises:
        CheckpointError: more than ``max_count`` checkpoints.
    """
    folder = Path(folder)
    try:
        entries = list_dir(folder, max_entries=MAX_ENTRIES)
    except TooManyEntriesError as e:
        raise CheckpointError(str(e)) from e
    except UnsafeFileError:
        return []  # missing, not a folder, or a link
    found = []
    for entry in entries:
        match = NAME.match(entry.name)
        if match and entry.kind == "file":
            found.append((int(match.group(1)), folder / entry.name))
    if len(found) > max_count:
        raise CheckpointError(f"{len(found)} checkpoints (at most {max_count} expected)")
    return sorted(found)


def load_weights(policy: torch.nn.Module, path: str | Path) -> None:
    """Load a checkpoint into ``policy``: same names, shapes and floating dtypes, all finite.

    Raises:
        CheckpointError: the file is not a valid checkpoint of this policy.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = read_regular_file(path, MAX_CHECKPOINT_MB)
    except UnsafeFileError as e:
        raise CheckpointError(str(e)) from e
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{Path(path).name} is not a safetensors file: {e}") from e
    expected = policy.state_dict()
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise CheckpointError(
            f"{Path(path).name} does not fit the policy (missing {missing[:3]}, extra {extra[:3]})"
        )
    for name, ref in expected.items():
        got = tensors[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise CheckpointError(
                f"{Path(path).name}: {name} is {got.dtype}{tuple(got.shape)}, the policy "
                f"needs {ref.dtype}{tuple(ref.shape)}"
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{Path(path).name}: {name} holds NaN or infinite values")
    policy.load_state_dict(tensors, strict=True)
