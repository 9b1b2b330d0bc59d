"""Text2Reward (Xie et al. 2023): dense reward code from a compact Pythonic env abstraction.

The prompt shows an ``Env`` class (bodies, what each action entry drives) and the ``State`` class
instead of the env's source; zero-shot, or few-shot with the most similar rewards from a library
of exported rewards. Later generations refine the best reward from feedback: automatic (training
metrics) or a person's text (``feedback.mode=interactive|file``, read by the loop).

Library layout (``method.library_dir``; rewardgen-export writes a superset)::

    LIBRARY/<entry>/reward.py   the reward program (defines compute_reward)
    LIBRARY/<entry>/meta.json   {"task": "hopper", "description": "...", "fitness": 3.2}

Similarity is token Jaccard between the task's name and description and each entry's.
"""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import TaskPromptInfo
from rewardgen.methods.eureka import EurekaMethod
from rewardgen.prompts import render
from rewardgen.tasks import TaskSpec

log = logging.getLogger(__name__)

MODES = ("zero_shot", "few_shot")
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "as", "is", "it", "its", "at", "by", "with", "for", "be", "while", "from"])
_EXAMPLE_CHARS = 2500


@dataclass(frozen=True)
class LibraryEntry:
    """One earlier good reward: its task, description and code."""

    name: str
    task: str
    description: str
    source: str


def tokens(text: str) -> set[str]:
    """Lower-case words without stop words (``half_cheetah`` gives ``half``, ``cheetah``)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def similarity(a: str, b: str) -> float:
    """Token Jaccard similarity: cheap, needs no model download, good enough to rank a library."""
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


def load_library(library_dir: str | Path) -> list[LibraryEntry]:
    """Every ``<entry>/reward.py`` with its ``meta.json`` under ``library_dir``.

    Raises:
        ConfigError: the folder does not exist or holds no entry.
    """
    root = Path(library_dir).expanduser()
    if not root.is_dir():
        raise ConfigError(f"method.library_dir={str(library_dir)!r} is not a folder; point it at "
                          "exported rewards (<entry>/reward.py + <entry>/meta.json)")
    entries = []
    for reward in sorted(root.glob("*/reward.py")):
        meta_path = reward.parent / "meta.json"
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except (OSError, ValueError) as e:
            log.warning("library entry %s: unreadable meta.json (%s); using its folder name", reward.parent, e)
            meta = {}
        entries.append(LibraryEntry(
            name=reward.parent.name,
            task=str(meta.get("task", reward.parent.name)),
            description=str(meta.get("description", "")),
            source=reward.read_text().strip(),
        ))
    if not entries:
        raise ConfigError(f"method.library_dir={str(library_dir)!r} holds no <entry>/reward.py")
    return entries


def nearest(entries: Sequence[LibraryEntry], task: TaskSpec, k: int) -> list[LibraryEntry]:
    """The ``k`` entries most similar to ``task`` (an entry for the task itself ranks first)."""
    query = f"{task.name.replace('_', ' ')} {task.description}"
    scored = sorted(
        entries,
        key=lambda e: (-similarity(query, f"{e.task.replace('_', ' ')} {e.description}"), e.name),
    )
    return list(scored[: max(0, k)])


def env_abstraction(task: TaskSpec) -> str:
    """The ``Env`` class of the prompt: bodies and the meaning of each action entry.

    Read from the MuJoCo model (names, control ranges, gears) so it cannot drift from the env.
    """
    env = task.make_env()
    try:
        model = env.unwrapped.model  # type: ignore[attr-defined]
        bodies = [name for i in range(1, model.nbody) if (name := model.body(i).name)]
        actions = []
        for i in range(model.nu):
            actuator = model.actuator(i)
            low, high = (float(v) for v in actuator.ctrlrange)
            gear = float(actuator.gear[0])
            joint = model.joint(int(model.actuator_trnid[i, 0])).name
            actions.append(f"action[{i}]: {actuator.name or joint} (force or torque = {gear:g} * action, "
                           f"action in [{low:g}, {high:g}])")
    finally:
        env.close()
    summary = f"{task.env_id} (MuJoCo). {task.description.split('. ')[0].rstrip('.')}."
    lines = [
        "class Env:",
        *textwrap.wrap(summary, 96, initial_indent='    """', subsequent_indent="    "),
        "",
        *textwrap.wrap(f"Bodies: {', '.join(bodies)}.", 96, initial_indent="    ",
                       subsequent_indent="        "),
        "    Actions (motor commands, one per actuated joint):",
        *(f"        {a}" for a in actions),
        '    """',
    ]
    return "\n".join(lines)


class Text2RewardMethod(EurekaMethod):
    """Text2Reward's prompts (zero- or few-shot) and answer parsing."""

    name = "text2reward"
    entry = "compute_reward"
    reward_kind = "program"

    def __init__(self, cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
        mode = str(getattr(cfg, "mode", "zero_shot"))
        if mode not in MODES:
            raise ConfigError(f"method.mode={mode!r} is not one of {MODES}")
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir
        self.env_source = env_abstraction(task)
        self.examples: list[LibraryEntry] = []
        if mode == "few_shot":
            library_dir = getattr(cfg, "library_dir", None)
            if not library_dir:
                raise ConfigError("method.mode=few_shot needs method.library_dir=PATH (exported rewards)")
            self.examples = nearest(load_library(library_dir), task, int(cfg.few_shot_k))

    def _task_prompt(self, failures: str) -> str:
        info = self.info
        examples = [
            {"task": e.task, "description": e.description or e.task, "source": e.source[:_EXAMPLE_CHARS]}
            for e in self.examples
        ]
        return render(
            self.prompt_dir,
            "task",
            env_source=self.env_source,
            state_source=info.state_source,
            action_shape=info.action_shape,
            action_low=f"{info.action_low:g}",
            action_high=f"{info.action_high:g}",
            dt=f"{info.dt:g}",
            max_steps=info.max_steps,
            examples=examples,
            description=self.task.description,
            failures=failures,
        )
