"""Matplotlib figures of a run, as PNG files a paper can use unchanged.

Each function takes plain numbers (not a run directory), writes one PNG and returns its path, so
the same figure can be drawn from one run (the report) or from many runs (a sweep script). The
object-oriented API (``Figure``) is used instead of ``pyplot``: no global state, no GUI backend,
safe in worker threads and on headless machines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from rewardgen.errors import ConfigError

DPI = 150
BEST_COLOR = "#1f77b4"  # matplotlib's C0; the report's browser test looks for it
OTHER_COLOR = "#9aa5b1"
_SIZE = (5.0, 3.2)  # inches: one column of a two-column paper at 150 dpi


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI, format="png")
    tmp.replace(path)
    return path


def fitness_curve(per_generation: Sequence[Sequence[float | None]], path: str | Path, *,
                  unit: str = "", title: str = "Fitness per generation") -> Path:
    """Every trained candidate's fitness (dots), each generation's best and the best so far.

    Args:
        per_generation: for each generation, the fitness of each candidate (None: not trained).
        path: the PNG to write.
        unit: the fitness unit, for the y label.
        title: figure title.
    """
    if not per_generation:
        raise ConfigError(f"fitness_curve needs at least one generation for {path}")
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    best: list[float] = []
    best_so_far: list[float] = []
    gens: list[int] = []
    for g, values in enumerate(per_generation):
        trained = [float(v) for v in values if v is not None and _finite(v)]
        n = len(trained)
        xs = [g + (i - (n - 1) / 2) * 0.06 for i in range(n)]  # spread dots of one generation
        ax.scatter(xs, trained, s=14, color=OTHER_COLOR, zorder=2,
                   label="candidate" if g == 0 else None)
        if trained:
            gens.append(g)
            best.append(max(trained))
            best_so_far.append(max(best[-1], best_so_far[-1]) if best_so_far else best[-1])
    if gens:
        ax.plot(gens, best, "o-", color=BEST_COLOR, lw=2, zorder=3, label="generation best")
        ax.plot(gens, best_so_far, "--", color="#ff7f0e", lw=1.5, zorder=3, label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel(f"fitness [{unit}]" if unit else "fitness")
    ax.set_xticks(range(len(per_generation)))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


MAX_COMPONENT_PANELS = 12  # more components than this: the largest (by magnitude) are drawn


def component_curves(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, *,
                     title: str = "Reward components during training") -> Path:
    """One small panel per reward component: its mean episode sum against env steps.

    Each panel has its own y axis, so a term a thousand times smaller than the dominant one is
    still readable (on one shared axis it is a flat line at zero).

    Args:
        curves: component name -> (env step, value) points.
        path: the PNG to write.
        title: figure title (name the candidate).
    """
    if not curves:
        raise ConfigError(f"component_curves needs at least one component for {path}")
    names = sorted(curves, key=lambda k: -max((abs(v) for _, v in curves[k]), default=0.0))
    shown = sorted(names[:MAX_COMPONENT_PANELS])
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(max(_SIZE[0], 2.4 * cols), 0.6 + 1.7 * rows))
    axes = list(fig.subplots(rows, cols, squeeze=False, sharex=True).flat)
    for ax, name in zip(axes, shown, strict=False):
        points = curves[name]
        ax.plot([p[0] for p in points], [p[1] for p in points], color=BEST_COLOR, lw=1.5,
                marker="." if len(points) < 20 else None)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for i, ax in enumerate(axes):
        if i >= len(shown):
            ax.axis("off")
        elif i + cols >= len(shown):  # the lowest panel of its column
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("env steps", fontsize=7)
    hidden = len(names) - len(shown)
    fig.suptitle(title + (f" ({hidden} smaller components not shown)" if hidden else "")
                 + "\nmean episode sum of each component, own y axis per panel", fontsize=9)
    return _save(fig, path)


def _bars(values: Mapping[str, float], errors: Mapping[str, float], path: str | Path, ylabel: str,
          title: str, references: Sequence[tuple[float, str]] = ()) -> Path:
    if not values:
        raise ConfigError(f"a bar chart needs at least one value for {path}")
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    names = list(values)
    colors = [BEST_COLOR if n == "generated" else OTHER_COLOR for n in names]
    ax.bar(names, [values[n] for n in names], yerr=[errors.get(n, 0.0) for n in names],
           color=colors, capsize=4, zorder=2)
    for y, label in references:
        ax.axhline(y, color="#444", lw=0.8, ls=":", zorder=1)
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"), fontsize=7,
                    ha="right", va="bottom", color="#444")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def human_normalised_scores(scores: Mapping[str, float], path: str | Path, *,
                            errors: Mapping[str, float] | None = None,
                            title: str = "Human-normalised score") -> Path:
    """Bars of (fitness - sparse) / |native - sparse|: 0 is the sparse reward, 1 the human one.

    Args:
        scores: label -> score, e.g. ``{"generated": 1.3, "native": 1.0, "sparse": 0.0}`` for
            one run, or one entry per task for a sweep.
        path: the PNG to write.
        errors: optional label -> error bar (standard deviation over seeds).
        title: figure title.
    """
    return _bars(scores, errors or {}, path, "human-normalised score", title,
                 [(0.0, "sparse"), (1.0, "human (native)")])


def variant_fitness(means: Mapping[str, float], path: str | Path, *,
                    errors: Mapping[str, float] | None = None, unit: str = "",
                    title: str = "Final retraining") -> Path:
    """Bars of the mean final fitness of each variant (generated, native, sparse) over seeds."""
    return _bars(means, errors or {}, path, f"fitness [{unit}]" if unit else "fitness", title)


def normalise(means: Mapping[str, float | None]) -> dict[str, float] | None:
    """Human-normalise a final summary's variant means; None without native and sparse.

    Example:
        >>> normalise({"generated": 3.0, "native": 2.0, "sparse": 1.0})
        {'generated': 2.0, 'native': 1.0, 'sparse': 0.0}
    """
    native, sparse = means.get("native"), means.get("sparse")
    if native is None or sparse is None or native == sparse:
        return None
    return {k: (v - sparse) / abs(native - sparse) for k, v in means.items() if v is not None}


Bar = tuple[float | None, float | None, Sequence[float]]  # mean (None: no bar), std, points


def sweep_panels(panels: Sequence[tuple[str, Mapping[str, Bar]]], scores: Mapping[str, Bar],
                 title: str) -> bytes:
    """PNG bytes of a sweep: one panel per group (title, label -> bar), then one of the scores.

    Tasks measure fitness in their own units, so each group gets its own axis; the
    human-normalised score is comparable across tasks and shares the last panel ("n/a" where
    no run of a group has a defined score).
    """
    import io

    n = len(panels) + 1
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows))
    flat = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax, (name, bars) in zip(flat, panels, strict=False):
        for x, (mean, std, points) in enumerate(bars.values()):
            if mean is None:
                continue
            ax.bar(x, mean, yerr=std or 0.0, color=f"C{x}", alpha=0.6, capsize=3)
            ax.scatter([x] * len(points), points, color="k", s=8, zorder=3)
        ax.set_xticks(range(len(bars)), list(bars), rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.set_ylabel("fitness", fontsize=8)
    ax = flat[len(panels)]
    for x, (mean, std, points) in enumerate(scores.values()):
        if mean is None:  # no final retraining, or the score is undefined in every run
            ax.text(x, 0.5, "n/a", ha="center", fontsize=8, color="gray")
            continue
        ax.bar(x, mean, yerr=std or 0.0, color="C4", alpha=0.6, capsize=3)
        ax.scatter([x] * len(points), points, color="k", s=8, zorder=3)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")  # the native reward's level
    ax.set_xticks(range(len(scores)), list(scores), rotation=30, ha="right", fontsize=7)
    ax.set_title("human-normalised score\n(generated - sparse) / |native - sparse|", fontsize=8)
    for extra in flat[n:]:
        extra.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
