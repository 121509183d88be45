"""Learning curves from metrics.jsonl records, drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Metrics drawn on the curves figure, one panel each, in this order when present.
CURVE_METRICS = ["nll_oracle", "nll_test", "train_loss", *(f"bleu{n}" for n in range(1, 6)),
                 *(f"self_bleu{n}" for n in range(1, 6)), "mean_len", "d_loss", "d_accuracy", "mean_reward"]


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
    """Draw one panel per metric in :data:`CURVE_METRICS` present in ``records``; write PNG to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in CURVE_METRICS if any(m in r for r in records)]
    if not names:
        return
    xs, boundaries = _x_axis(records)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.4 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        pts = [(x, r[name]) for x, r in zip(xs, records, strict=True) if name in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", linewidth=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        for x0, phase in boundaries:
            ax.axvline(x0, color="grey", linewidth=0.6, linestyle="--")
            ax.text(x0, 1.0, f" {phase}", transform=ax.get_xaxis_transform(), fontsize=7, va="top")
    axes[-1, 0].set_xlabel("epoch / iteration (phases laid end to end)")
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
