"""One quality–diversity figure and table for a benchmark: the curves of an ``eval sweep`` and fixed points.

    python eval/quality_diversity_figure.py SWEEP_JSON [SWEEP_JSON ...] [--points POINTS_JSON] [--out PREFIX]
        [--temperature 1]

``SWEEP_JSON`` is ``sweep.json`` from ``seqgan-kit eval sweep ... --out DIR``; the first file's first run is the
baseline (e.g. the MLE run). Several sweeps of the same settings (corpus, orders, temperatures, samples, seed,
references), e.g. one per run as the runs finish, are drawn as one. ``POINTS_JSON`` maps a label to one scored
sample file, ``{"label": {"bleu": {"2": ...}, "self_bleu": {"2": ...}, "fed": ...}}`` (e.g. Texygen's published
samples scored with ``eval bleu`` / ``eval self-bleu`` / ``eval fed`` under the same protocol as the sweep). Writes
``PREFIX.png`` (one panel per BLEU order: every run's temperature curve, every fixed point as a hollow marker) and
``PREFIX.md`` (each run's point at ``--temperature`` and every fixed point: BLEU-n, Self-BLEU-n, BLEU minus the
baseline curve at the same Self-BLEU, FED and mean length where known).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from seqgan_kit.metrics.sweep import curve_bleu

SAME = ("corpus", "orders", "temperatures", "n", "self_bleu_samples", "seed")
"""What sweeps drawn together must share, besides their references."""


def references_of(sweep: dict[str, Any]) -> tuple[str, int]:
    """The references a sweep scored against: its first run's test split (the same for every run of one corpus)
    or a file, and how many."""
    refs = sweep["references"]
    source = "test split" if refs["source"].startswith("test split of ") else refs["source"]
    return source, refs["n"]


def merge(sweeps: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One sweep with every run of ``sweeps`` (in order); SystemExit when their settings differ or two runs share a
    label."""
    merged = {key: sweeps[0][key] for key in SAME}
    merged["runs"] = {}
    for sweep, name in zip(sweeps, names, strict=True):
        differ = [key for key in SAME if sweep[key] != merged[key]]
        differ += ["references"] if references_of(sweep) != references_of(sweeps[0]) else []
        if differ:
            raise SystemExit(f"{name}: {differ[0]} differs from {names[0]}'s; only sweeps of the same settings "
                             f"are drawn together")
        for label, records in sweep["runs"].items():
            if label in merged["runs"]:
                raise SystemExit(f"{name}: run {label!r} is already in an earlier sweep")
            merged["runs"][label] = records
    return merged


def rows_at(sweep: dict[str, Any], points: dict[str, dict[str, Any]], temperature: float) -> list[dict[str, Any]]:
    """One row per run (its record at ``temperature``) and per fixed point, each with its gaps to the first run's
    curve: ``{"label", "T", "bleu", "self_bleu", "gap", "fed", "mean_len"}`` (None where unknown/outside)."""
    runs = sweep["runs"]
    baseline = runs[next(iter(runs))]
    orders = [str(o) for o in sweep["orders"]]
    out = []
    items = [(label, next((r for r in recs if r["temperature"] == temperature), None), f"{temperature:g}")
             for label, recs in runs.items()]
    items += [(label, point, "") for label, point in points.items()]  # a fixed sample set has no temperature
    for label, rec, t in items:
        if rec is None:
            continue
        gap = {}
        for o in orders:
            ref = curve_bleu(baseline, rec["self_bleu"][o], int(o))
            gap[o] = None if ref is None else rec["bleu"][o] - ref
        out.append({"label": label, "T": t, "bleu": rec["bleu"],
                    "self_bleu": rec["self_bleu"], "gap": gap, "fed": rec.get("fed"),
                    "mean_len": rec.get("mean_len")})
    return out


def table(rows: list[dict[str, Any]], orders: list[str], baseline: str) -> str:
    """Markdown: BLEU-n / Self-BLEU-n / gap per order, FED, mean length."""
    head = (["model", "T"] + [f"BLEU-{o}" for o in orders] + [f"Self-BLEU-{o}" for o in orders]
            + [f"gap-{o}" for o in orders] + ["FED", "mean len"])
    lines = [f"Gap: BLEU minus {baseline}'s temperature curve at the same Self-BLEU (positive: above it; "
             "'outside': beyond the curve's Self-BLEU range).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for r in rows:
        cells = [r["label"], r["T"]] + [f"{r['bleu'][o]:.3f}" for o in orders]
        cells += [f"{r['self_bleu'][o]:.3f}" for o in orders]
        cells += ["outside" if r["gap"][o] is None else f"{r['gap'][o]:+.3f}" for o in orders]
        cells += ["" if r["fed"] is None else f"{r['fed']:.4f}",
                  "" if r["mean_len"] is None else f"{r['mean_len']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(sweep: dict[str, Any], points: dict[str, dict[str, Any]], path: Path, temperature: float = 1.0) -> None:
    """A panel per BLEU order: x = Self-BLEU-n, y = BLEU-n; curves over temperature (a large dot at
    ``temperature``), fixed points hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orders = [str(o) for o in sweep["orders"]]
    cols = min(2, len(orders))
    nrows = (len(orders) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4.8 * nrows), squeeze=False)
    markers = "sD^vP*Xh"
    for ax, o in zip(axes.flat, orders, strict=False):
        for label, recs in sweep["runs"].items():
            pts = sorted((r["self_bleu"][o], r["bleu"][o], r["temperature"]) for r in recs)
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3.5, linewidth=1.1,
                            label=label)
            for x, y, t in pts:
                if t == temperature:
                    ax.plot([x], [y], marker="o", markersize=7, color=line.get_color())
        for i, (label, p) in enumerate(points.items()):
            ax.plot([p["self_bleu"][o]], [p["bleu"][o]], linestyle="none", marker=markers[i % len(markers)],
                    markersize=8, markerfacecolor="none", color="0.25", label=label)
        ax.set_xlabel(f"Self-BLEU-{o}  (lower = more diverse)")
        ax.set_ylabel(f"BLEU-{o}  (higher = better quality)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(orders):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Quality vs diversity: each run over temperature (large dot: T = {temperature:g}), fixed sample "
                 "sets hollow; better is up and left", fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", type=Path, nargs="+")
    ap.add_argument("--points", type=Path, help="fixed points (see the module docstring)")
    ap.add_argument("--out", type=Path, default=Path("quality_diversity"), help="output prefix (.png, .md)")
    ap.add_argument("--temperature", type=float, default=1.0, help="the runs' point in the table (default 1)")
    args = ap.parse_args()
    sweep = merge([json.loads(path.read_text(encoding="utf-8")) for path in args.sweeps],
                  [str(path) for path in args.sweeps])
    points = json.loads(args.points.read_text(encoding="utf-8")) if args.points else {}
    if args.temperature not in sweep["temperatures"]:
        ap.error(f"--temperature {args.temperature:g} is not one of the sweep's {sweep['temperatures']}")
    rows = rows_at(sweep, points, args.temperature)
    baseline = next(iter(sweep["runs"]))
    args.out.with_suffix(".md").write_text(table(rows, [str(o) for o in sweep["orders"]], baseline), encoding="utf-8")
    figure(sweep, points, args.out.with_suffix(".png"), args.temperature)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
