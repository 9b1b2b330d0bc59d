"""The State view: named quantities copied out of the simulator, and the source shown to the LLM.

A task declares its State view as a list of fields, each with a *source* in a small grammar::

    qpos[0]            qvel[2:]          qpos[rootz]       (joint names resolve to addresses)
    xpos[torso]        xpos[torso][2]    xquat[torso]      cvel[torso]      subtree_com[torso]
    cfrc_ext[1:]       site_xpos[tip]    sensordata[name]  ctrl             act
    time               dt
    upright(xquat[torso])   yaw(...)   pitch(...)   roll(...)   norm(...)
    env.goal           env.goal[3:7]     env._get_pos_objects()[0:3]

Names may hold ``:``, ``.`` and ``-`` as robot models' do (``site_xpos[robot0:grip]``). An
``env.<attribute>`` source copies an attribute of the unwrapped env (or the value of one of its
methods called without arguments) for what is not in MuJoCo's data: Fetch's ``goal``, MetaWorld's
``_target_pos``. Like every source it comes from the trusted task file, never from the LLM.

From that one declaration rewardgen builds both the class definition that the LLM reads and the
code that fills it during training: :func:`state_source` renders the class, and
:class:`StateBuilder` executes *that very source* to make the class it instantiates, so the prompt
and the executed contract cannot drift apart. A State holds plain floats and read-only numpy
copies, never a handle to MuJoCo's model or data.

Building a State runs on every env step, so each source is resolved once, against the model, to
fixed positions in MuJoCo's flat data buffers, and all fields are read by one generated function
(``.item`` for scalars, one buffer copy per array). Only integers resolved here and names from
the fixed grammar ever reach that generated code.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rewardgen.errors import TaskError
from rewardgen.tasks.sources import IDENTIFIER, Bindings, compile_source, parse_source, resolve


@dataclass(frozen=True)
class StateField:
    """One named quantity of the State view."""

    name: str
    source: str
    unit: str = ""
    doc: str = ""


def _clean(text: str) -> str:
    return " ".join(text.split())


def state_source(
    fields: Sequence[StateField], shapes: Sequence[tuple[int, ...]], title: str
) -> str:
    """Render the State class definition exactly as it is executed and shown to the LLM."""
    lines = [
        "class State(NamedTuple):",
        f'    """{_clean(title).replace(chr(34) * 3, "")} Plain floats and read-only numpy arrays'
        ' copied from the simulator."""',
        "",
    ]
    for field, shape in zip(fields, shapes, strict=True):
        kind = "float" if shape == () else "np.ndarray"
        meta = [f"[{_clean(field.unit)}]" if field.unit.strip() else ""]
        if shape != ():
            meta.append(f"shape {shape}")
        if field.doc.strip():
            meta.append(_clean(field.doc))
        comment = " ".join(m for m in meta if m)
        lines.append(
            f"    {field.name}: {kind}  # {comment}" if comment else f"    {field.name}: {kind}"
        )
    return "\n".join(lines) + "\n"


class StateBuilder:
    """Copies the declared fields out of a MuJoCo env into a State instance.

    Args:
        fields: the task's State view declaration.
        env: a gymnasium MuJoCo env (any wrapper depth); it must have been reset once.
        title: first line of the class docstring shown to the LLM.
    """

    def __init__(
        self, fields: Sequence[StateField], env: Any, title: str = "One time step."
    ) -> None:
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise TaskError(f"state fields repeat a name: {names}")
        for name in names:
            if not IDENTIFIER.match(name) or name.startswith("_") or keyword.iskeyword(name):
                raise TaskError(
                    f"state field name {name!r} must be a plain identifier (letters, digits, _; "
                    "not starting with _ and not a Python keyword)"
                )
        base = env.unwrapped
        self._data = base.data
        bindings = Bindings(base)
        resolved = [resolve(f.source, base.model, float(base.dt), bindings) for f in fields]
        self.fields = tuple(fields)
        self.source = state_source(fields, [r.shape for r in resolved], title)
        self.state_class = self._exec_source(self.source)
        self._code = self._builder_code([r.expr for r in resolved])
        self.build: Callable[[], Any] = self._make_build(self._code, bindings.scope(self._data))

    @staticmethod
    def _exec_source(source: str) -> type:
        namespace: dict[str, Any] = {"NamedTuple": NamedTuple, "np": np}
        exec(compile(source, "<state view>", "exec"), namespace)  # trusted: rendered from the spec
        return namespace["State"]  # type: ignore[no-any-return]

    @staticmethod
    def _builder_code(exprs: Sequence[str]) -> str:
        values = "".join(f"        {e},\n" for e in exprs)
        return f"def build():\n    return _tuple_new(_State, (\n{values}    ))\n"

    def _make_build(self, code: str, scope: dict[str, Any]) -> Callable[[], Any]:
        scope.update(_tuple_new=tuple.__new__, _State=self.state_class)
        # Trusted: only names from the grammar and integers resolved against the model.
        exec(compile(code, "<state view builder>", "exec"), scope)
        build: Callable[[], Any] = scope["build"]
        build.__doc__ = "Return a State for the env's current simulator data."
        return build


__all__ = ["StateBuilder", "StateField", "compile_source", "parse_source", "state_source"]
