"""The quality–diversity curve: BLEU-n against Self-BLEU-n as the sampling temperature is swept.

Caccia et al. ("Language GANs falling short", ICLR 2020) showed that one (BLEU, Self-BLEU) point says little:
lowering an MLE model's softmax temperature trades diversity for quality, and a GAN that looks better than MLE
at temperature 1 usually sits *on or below* MLE's temperature curve. So a text GAN is judged by sweeping the
temperature of every model and comparing the curves.

For each temperature, :func:`quality_diversity` samples ``n`` texts, splits them as BLEU does for the run's
corpus (``model.eval_tokens``) and records

- ``bleu``: BLEU-n of every sample against all references, averaged (quality; higher is better);
- ``self_bleu``: Self-BLEU-n, every sample against the other samples (lower is more diverse);
- ``mean_len``: mean number of eval tokens per sample; ``distinct``: the share of distinct sample texts.

Every temperature (and every run) is sampled with the same ``seed``, so the points of one curve differ by the
temperature alone. Temperature 0 is greedy decoding: all samples are identical (Self-BLEU 1 when the
sentence has at least ``n`` tokens).

Is a GAN above the MLE curve? :func:`gaps_to_baseline` answers it per point: the point's BLEU minus the
baseline curve's BLEU at the same Self-BLEU, the curve read linearly between its two neighbouring
temperatures (positive: above the curve, better quality at equal diversity; ``None``: the point's Self-BLEU
lies outside the range the baseline's temperatures cover, so the curve says nothing there).

Records are plain JSON values; the ``bleu`` and ``self_bleu`` dicts are keyed by the order *as a string*
(``"2"``), in memory as in JSON, so that a record read back from ``sweep.json`` equals the one written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import UserError
from ..files import atomic_path
from .bleu import BleuReferences, self_bleu

__all__ = [
    "MIN_REFERENCE_COVERAGE",
    "SweepModel",
    "check_references",
    "curve_bleu",
    "format_gaps",
    "format_table",
    "gaps_to_baseline",
    "plot_sweep",
    "quality_diversity",
    "reference_coverage",
]

# References whose tokens are less than this share covered by the run's vocabulary are from another corpus.
MIN_REFERENCE_COVERAGE = 0.5


class SweepModel(Protocol):
    """What a sweep needs from a model (:class:`seqgan_kit.runs.textmodel.TextModel` provides it).

    Optional: ``bleu_orders: list[int]`` (the run's own BLEU orders) and ``vocab_tokens: set[str]`` (the
    vocabulary in eval-token space), read with ``getattr``.
    """

    name: str
    corpus: str
    vocab_fingerprint: str

    def sample_text(self, n: int, temperature: float = 1.0, seed: int = 0) -> list[str]: ...

    def eval_tokens(self, texts: list[str]) -> list[list[str]]: ...

    def read_references(self, path: str | Path | None = None,
                        limit: int | None = None) -> list[list[str]]: ...


def quality_diversity(model: SweepModel, references: Sequence[Sequence[str]], temperatures: Iterable[float],
                      n: int, orders: Iterable[int], seed: int = 0,
                      self_bleu_samples: int | None = None,
                      fed_of: Callable[[list[str]], float] | None = None,
                      progress: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """One record per temperature (in the order given) of ``model``'s samples scored against ``references``.
    ``progress`` (e.g. a bar's ``update``) is called after each temperature.

    ``references`` are tokenized sentences (as ``model.read_references`` returns them); they are indexed once
    for all temperatures. ``n`` samples (at least 2) are drawn per temperature with ``seed``. Self-BLEU, whose
    leave-one-out cost grows with the square of the sample count, uses only the first ``self_bleu_samples``
    samples when given (at least 2; more than ``n`` means all ``n``).

    Each record: ``{"temperature": float, "n_samples": n, "n_self_bleu": k, "bleu": {"2": float, ...},
    "self_bleu": {"2": float, ...}, "mean_len": float, "distinct": float}``.
    """
    temperatures = [float(t) for t in temperatures]
    orders = sorted(set(orders))
    if not temperatures:
        raise ValueError("no temperatures given")
    bad = [t for t in temperatures if not math.isfinite(t) or t < 0]
    if bad:
        raise ValueError(f"temperatures must be finite and >= 0, got {bad[0]}")
    if n < 2:
        raise ValueError(f"a sweep needs at least 2 samples per temperature (Self-BLEU), got n={n}")
    if self_bleu_samples is not None and self_bleu_samples < 2:
        raise ValueError(f"self_bleu_samples must be at least 2, got {self_bleu_samples}")
    if not orders:
        raise ValueError("no BLEU orders given")
    k = n if self_bleu_samples is None else min(n, self_bleu_samples)
    index = BleuReferences(references, max_order=max(orders))  # built once, scores every temperature
    records = []
    for t in temperatures:
        texts = model.sample_text(n, temperature=t, seed=seed)
        if len(texts) != n:
            raise ValueError(f"{model.name}: asked for {n} samples at temperature {t:g}, got {len(texts)}")
        tokens = model.eval_tokens(texts)
        quality = index.score(tokens, orders)
        diversity = self_bleu(tokens[:k], orders=orders)
        records.append({
            "temperature": t,
            "n_samples": n,
            "n_self_bleu": k,
            "bleu": {str(o): float(quality[o]) for o in orders},
            "self_bleu": {str(o): float(diversity[o]) for o in orders},
            "mean_len": math.fsum(map(len, tokens)) / n,
            "distinct": len(set(texts)) / n,
        })
        if fed_of is not None:
            records[-1]["fed"] = float(fed_of(texts))
        if progress is not None:
            progress()
    return records


DEFAULT_ORDER = 2
"""The BLEU order of a sweep whose runs name none."""


def default_orders(models: Iterable[Any]) -> list[int]:
    """The union of the models' own BLEU orders (``bleu_orders``), or :data:`DEFAULT_ORDER` when none has any."""
    orders = {int(o) for m in models for o in (getattr(m, "bleu_orders", None) or [])}
    return sorted(orders) or [DEFAULT_ORDER]


def reference_coverage(references: Iterable[Iterable[str]], vocabulary: set[str]) -> float:
    """The share of reference token occurrences (not types) that are in ``vocabulary``; 0.0 when empty."""
    total = covered = 0
    for sentence in references:
        for token in sentence:
            total += 1
            covered += token in vocabulary
    return covered / total if total else 0.0


def model_vocabulary(model: SweepModel, n: int = 1000, seed: int = 0) -> tuple[set[str], str]:
    """The model's tokens in eval-token space and where they came from.

    ``model.vocab_tokens`` when the model has a non-empty one, else the tokens of ``n`` samples at
    temperature 1 (a subset of the vocabulary, but the frequent tokens are all there).
    """
    vocab = getattr(model, "vocab_tokens", None)
    if vocab:
        return set(vocab), "vocabulary"
    samples = model.eval_tokens(model.sample_text(n, temperature=1.0, seed=seed))
    return {tok for sentence in samples for tok in sentence}, f"{n} samples at temperature 1"


def check_references(model: SweepModel, references: Sequence[Sequence[str]], source: str,
                     vocabulary: set[str] | None = None, n: int = 1000, seed: int = 0) -> float:
    """Reject references from another corpus; return their coverage.

    The rule: if fewer than :data:`MIN_REFERENCE_COVERAGE` (50%) of the reference token occurrences are in
    the model's vocabulary (see :func:`model_vocabulary`), raise :class:`UserError`. References from the
    run's own corpus cover 80–100% (rare words cut from a capped vocabulary are the rest); another script or
    a distant domain covers far less (English vs Chinese: 0%).
    """
    where = "vocabulary"
    if vocabulary is None:
        vocabulary, where = model_vocabulary(model, n, seed)
    coverage = reference_coverage(references, vocabulary)
    if coverage < MIN_REFERENCE_COVERAGE:
        raise UserError(f"{source}: only {coverage:.0%} of the reference tokens occur in {model.name}'s {where} "
                        f"(corpus {model.corpus}); references from another corpus? (need at least "
                        f"{MIN_REFERENCE_COVERAGE:.0%})")
    return coverage


def _orders_of(curves: dict[str, list[dict[str, Any]]]) -> list[int]:
    return sorted({int(o) for records in curves.values() for r in records for o in r["bleu"]})


def format_table(curves: dict[str, list[dict[str, Any]]], orders: Iterable[int] | None = None,
                 markdown: bool = False) -> str:
    """The sweep as a table: one row per (run, temperature), columns BLEU-n..., Self-BLEU-n..., length,
    distinct share. Aligned plain text for the terminal, or a Markdown table with ``markdown``. Ends with a
    newline.
    """
    orders = sorted(set(orders)) if orders is not None else _orders_of(curves)
    has_fed = any("fed" in r for records in curves.values() for r in records)
    header = (["run", "T"] + [f"BLEU-{o}" for o in orders] + [f"Self-BLEU-{o}" for o in orders]
              + ["len", "distinct"] + (["FED"] if has_fed else []))
    rows = []
    for label, records in curves.items():
        for r in records:
            rows.append([label, f"{r['temperature']:g}"]
                        + [f"{r['bleu'][str(o)]:.4f}" for o in orders]
                        + [f"{r['self_bleu'][str(o)]:.4f}" for o in orders]
                        + [f"{r['mean_len']:.1f}", f"{r['distinct']:.3f}"]
                        + ([f"{r['fed']:.4g}" if "fed" in r else "-"] if has_fed else []))
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]).rstrip()

    return "\n".join([line(header)] + [line(row) for row in rows]) + "\n"


def curve_bleu(records: Sequence[dict[str, Any]], self_bleu_value: float, order: int) -> float | None:
    """The BLEU-``order`` of the curve ``records`` at Self-BLEU ``self_bleu_value``: linear between the two
    points (sorted by Self-BLEU) around it; None outside the curve's Self-BLEU range."""
    key = str(order)
    points = sorted((r["self_bleu"][key], r["bleu"][key]) for r in records)
    for (s0, b0), (s1, b1) in zip(points, points[1:], strict=False):
        if s0 <= self_bleu_value <= s1:
            return b0 if s1 == s0 else b0 + (b1 - b0) * (self_bleu_value - s0) / (s1 - s0)
    if len(points) == 1 and points[0][0] == self_bleu_value:
        return points[0][1]
    return None


def gaps_to_baseline(curves: dict[str, list[dict[str, Any]]],
                     orders: Iterable[int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """For every run after the first (the baseline, e.g. the MLE run), every point's BLEU minus the baseline
    curve's BLEU at the same Self-BLEU (:func:`curve_bleu`): ``{label: [{"temperature": t, "gap": {"2": float
    or None, ...}}, ...]}``. Positive: above the baseline curve."""
    orders = sorted(set(orders)) if orders is not None else _orders_of(curves)
    labels = list(curves)
    baseline = curves[labels[0]]
    result = {}
    for label in labels[1:]:
        rows = []
        for r in curves[label]:
            gap = {}
            for o in orders:
                ref = curve_bleu(baseline, r["self_bleu"][str(o)], o)
                gap[str(o)] = None if ref is None else r["bleu"][str(o)] - ref
            rows.append({"temperature": r["temperature"], "gap": gap})
        result[label] = rows
    return result


def format_gaps(gaps: dict[str, list[dict[str, Any]]], baseline: str, markdown: bool = False) -> str:
    """:func:`gaps_to_baseline` as a table (``outside`` where the baseline curve does not reach); ends with a
    newline, empty when there is only the baseline."""
    if not gaps:
        return ""
    orders = sorted({int(o) for rows in gaps.values() for r in rows for o in r["gap"]})
    header = ["run", "T"] + [f"BLEU-{o} gap" for o in orders]
    rows = [[label, f"{r['temperature']:g}"]
            + ["outside" if r["gap"][str(o)] is None else f"{r['gap'][str(o)]:+.4f}" for o in orders]
            for label, records in gaps.items() for r in records]
    title = f"BLEU minus {baseline}'s curve at the same Self-BLEU (positive: above it)"
    if markdown:
        lines = [title, "", "| " + " | ".join(header) + " |",
                 "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = [title] + ["  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                              zip(row[1:], widths[1:], strict=True)]).rstrip()
                       for row in [header] + rows]
    return "\n".join(lines) + "\n"


def plot_sweep(curves: dict[str, list[dict[str, Any]]], order: int, path: str | Path) -> None:
    """Draw the quality–diversity curves for BLEU-``order``; write a PNG to ``path`` atomically.

    One line per run (``curves`` maps a label to its records), x = Self-BLEU (lower = more diverse),
    y = BLEU (higher = better quality), each point labelled with its temperature. Better is up and left.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = str(order)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    # Temperature labels: each run's on its own side of its points. The curves rise to the right, so below-right
    # and above-left keep the first two runs' labels off both lines (their curves often lie on top of each other).
    sides = [(6, -12), (-20, 6), (6, 6), (-20, -12)]
    for i, (label, records) in enumerate(curves.items()):
        points = sorted((r["temperature"], r["self_bleu"][key], r["bleu"][key]) for r in records)
        line, = ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", linewidth=1.2, label=label)
        for t, x, y in points:
            ax.annotate(f"{t:g}", (x, y), textcoords="offset points", xytext=sides[i % len(sides)],
                        fontsize=7, color=line.get_color())
    ax.set_xlabel(f"Self-BLEU-{order}  (lower = more diverse)")
    ax.set_ylabel(f"BLEU-{order}  (higher = better quality)")
    ax.set_title(f"Quality vs diversity over temperature, BLEU-{order}\nbetter: up and to the left",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="run (points: temperature)", title_fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(Path(path), suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
