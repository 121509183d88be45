"""Learning curves from metrics.jsonl records, drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..files import atomic_path

FIRST = ["nll_oracle", "nll_test", "train_loss"]
"""Panels drawn first when present; every other numeric metric follows in the order it was first logged."""
NOT_METRICS = {"phase", "epoch", "step", "elapsed_s"}
"""Record keys that are bookkeeping, not curves."""


def curve_names(records: list[dict[str, Any]]) -> list[str]:
    """Every numeric metric in ``records`` (one panel each): :data:`FIRST`, then first-logged order."""
    seen: dict[str, None] = {}
    for r in records:
        for key, value in r.items():
            if key not in NOT_METRICS and isinstance(value, int | float) and not isinstance(value, bool):
                seen.setdefault(key)
    return [m for m in FIRST if m in seen] + [m for m in seen if m not in FIRST]


def _x_axis(records: list[dict[str, Any]]) -> tuple[list[float], list[tuple[float, str]]]:
    """A global x for every record: each phase's epoch/step offset by the phases before it."""
    xs: list[float] = []
    boundaries: list[tuple[float, str]] = []
    offset = 0.0
    current = None
    last = 0.0
    for r in records:
        phase = r.get("phase", "")
        unit = float(r.get("epoch", r.get("step", 0)))
        if phase != current:
            if current is not None:
                offset = last
            boundaries.append((offset, phase))
            current = phase
        last = offset + unit
        xs.append(last)
    return xs, boundaries


def plot_curves(records: list[dict[str, Any]], out: str | Path) -> None:
    """Draw one panel per numeric metric in ``records`` (:func:`curve_names`) with at least two finite points;
    write PNG to ``out`` (nothing when no metric has two points, e.g. a one-record word2vec run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, boundaries = _x_axis(records)
    series = {name: [(x, r[name]) for x, r in zip(xs, records, strict=True)
                     if isinstance(r.get(name), int | float) and math.isfinite(r[name])]
              for name in curve_names(records)}
    names = [name for name, pts in series.items() if len(pts) > 1]  # one point is not a curve
    if not names:
        return
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.4 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        pts = series[name]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", linewidth=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        for x0, phase in boundaries:
            ax.axvline(x0, color="grey", linewidth=0.6, linestyle="--")
            ax.text(x0, 1.0, f" {phase}", transform=ax.get_xaxis_transform(), fontsize=7, va="top")
    axes[-1, 0].set_xlabel("epoch / iteration (phases laid end to end)")
    fig.tight_layout()
    try:
        with atomic_path(Path(out), suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
