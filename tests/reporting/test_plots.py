"""The paper figures: real matplotlib PNGs, checked by reading the pixels back."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from rewardgen.errors import ConfigError
from rewardgen.reporting.plots import (
    BEST_COLOR,
    DPI,
    component_curves,
    fitness_curve,
    human_normalised_scores,
    normalise,
    variant_fitness,
)


def _has_color(path, hex_color: str, min_pixels: int = 50) -> bool:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    image = iio.imread(path)[..., :3].astype(int)
    return int((np.abs(image - rgb).sum(axis=-1) < 30).sum()) >= min_pixels


def test_fitness_curve(tmp_path):
    path = fitness_curve([[1.0, None, 0.5], [None, None], [2.0, 1.5]], tmp_path / "f.png",
                         unit="m")
    image = iio.imread(path)
    assert image.shape[1] == int(5.0 * DPI) and image.shape[0] == int(3.2 * DPI)
    assert _has_color(path, BEST_COLOR)  # the generation-best line is drawn


def test_component_curves_and_bars(tmp_path):
    curves = {"forward": [(0, 1.0), (100, 2.0), (200, 3.0)], "ctrl_cost": [(0, -0.5), (200, -0.1)]}
    assert _has_color(component_curves(curves, tmp_path / "c.png"), BEST_COLOR)
    scores = normalise({"generated": 3.0, "native": 2.0, "sparse": 1.0})
    assert scores == {"generated": 2.0, "native": 1.0, "sparse": 0.0}
    hns = human_normalised_scores(scores, tmp_path / "h.png", errors={"generated": 0.2})
    assert _has_color(hns, BEST_COLOR, min_pixels=2000)  # the generated bar
    raw = variant_fitness({"generated": 1.0, "native": 1.2}, tmp_path / "v.png", unit="s")
    assert _has_color(raw, BEST_COLOR, min_pixels=2000)
    assert normalise({"generated": 1.0, "native": 1.0, "sparse": 1.0}) is None
    assert normalise({"generated": 1.0}) is None


def test_component_curves_show_a_small_term_beside_a_dominant_one(tmp_path):
    # "big" is flat at 1000, "small" rises to 0.03: on one shared axis "small" is a flat line at 0
    curves = {"big": [(i * 100, 1000.0) for i in range(30)],
              "small": [(i * 100, 0.001 * i) for i in range(30)]}
    image = iio.imread(component_curves(curves, tmp_path / "c.png"))[..., :3].astype(int)
    rgb = np.array([int(BEST_COLOR[i:i + 2], 16) for i in (1, 3, 5)])
    right = np.abs(image[:, image.shape[1] // 2:] - rgb).sum(axis=-1) < 30  # the "small" panel
    rows = np.flatnonzero(right.any(axis=1))  # pixel rows the line passes through
    assert rows.size > 0.2 * image.shape[0]  # it rises visibly (a flat line covers a few rows)


def test_refusals(tmp_path):
    with pytest.raises(ConfigError, match="at least one generation"):
        fitness_curve([], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="at least one component"):
        component_curves({}, tmp_path / "x.png")
    with pytest.raises(ConfigError, match="at least one value"):
        human_normalised_scores({}, tmp_path / "x.png")
