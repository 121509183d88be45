"""What a run reports besides ``metrics.jsonl`` and ``curves.png``.

- :class:`Tracker`: the experiment trackers of ``runtime.report_to`` (``"tensorboard"``: event files under
  ``RUN_DIR/tensorboard/``, one scalar per logged metric and phase, and text samples at every evaluation; the
  ``tensorboard`` package is the optional extra ``seqgan-kit[tensorboard]``).
- :func:`say`: a console line that does not break a progress bar (``tqdm.write``); :func:`progress_bar`.
- :func:`run_summary`: the end-of-run summary (best and final values of the main metrics, wall time, files).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError, require_extra

REPORTERS = ("tensorboard",)
"""What ``runtime.report_to`` may name."""
TENSORBOARD_DIR = "tensorboard"
NOT_METRICS = {"phase", "epoch", "step", "elapsed_s"}
LOWER_IS_BETTER = ("nll", "fed")
"""A metric whose name starts with one of these is best at its minimum; ``bleu*`` (not Self-BLEU) at its maximum.
Losses and Self-BLEU are summarised by their final value only (lower is not simply better for them)."""
MAIN = ("nll", "fed", "bleu", "self_bleu", "g_loss", "d_loss", "train_loss", "loss")


def say(text: str) -> None:
    """Print a line to stdout above any active progress bar (a plain ``print`` would be drawn over by it)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str) -> Iterator[Any]:
    """A tqdm bar on stderr (hidden when stderr is not a terminal), closed on exit."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=None, file=sys.stderr, leave=False)
    try:
        yield bar
    finally:
        bar.close()


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Tracker:
    """The trackers of ``report_to`` for one run directory (nothing at all when ``report_to`` is empty)."""

    def __init__(self, run_dir: str | Path, report_to: Sequence[str] = ()) -> None:
        self.writers: dict[str, Any] = {}
        for name in report_to:
            if name not in REPORTERS:
                raise UserError(f"runtime.report_to: unknown tracker {name!r} (known: {', '.join(REPORTERS)})")
        if "tensorboard" in report_to:
            check_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            self.writers["tensorboard"] = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR))

    @property
    def active(self) -> bool:
        return bool(self.writers)

    def log(self, record: dict[str, Any], samples: Callable[[], list[str]] | None = None) -> None:
        """One metrics record: every finite number as scalar ``PHASE/NAME`` at the record's epoch/step, and
        (when ``samples`` is given) the texts it returns as ``PHASE/samples``."""
        writer = self.writers.get("tensorboard")
        if writer is None:
            return
        phase = str(record.get("phase", "run"))
        step = int(record.get("epoch", record.get("step", 0)))
        for key, value in record.items():
            if key not in NOT_METRICS and _numeric(value):
                writer.add_scalar(f"{phase}/{key}", float(value), step)
        if samples is not None:
            lines = samples()
            if lines:  # markdown: one sample per line, verbatim
                writer.add_text(f"{phase}/samples", "\n".join(f"    {line}" for line in lines), step)
        writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


TRACKED_SAMPLES = 8
"""Samples written as text at each evaluation (TensorBoard)."""


def sample_lines(generator: Any, task: Any, seed: int, n: int = TRACKED_SAMPLES) -> list[str]:
    """``n`` samples of ``generator`` as text (a text task's decoded lines; token ids for the synthetic task),
    drawn from their own stream ``seed``: the run's random streams, and the generator's train/eval mode, are
    left exactly as they were (tracking changes no result)."""
    import torch

    device = next(generator.parameters()).device
    was_training = generator.training
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        generator.eval()
        try:
            rng = torch.Generator(device=device).manual_seed(seed)
            seqs = generator.sample(n, generator=rng)  # [n, T]
        finally:
            generator.train(was_training)
    vocab, tokenizer = getattr(task, "vocab", None), getattr(task, "tokenizer", None)
    if vocab is not None and tokenizer is not None:
        from ..data.corpus import decode_rows

        return decode_rows(seqs, vocab, tokenizer)
    return [" ".join(map(str, row)) for row in seqs.tolist()]


def check_tensorboard() -> None:
    """UserError naming the extra when the ``tensorboard`` package is missing (torch's writer needs it)."""
    require_extra("tensorboard", "tensorboard", "runtime.report_to = [\"tensorboard\"]")


def _better(name: str) -> str | None:
    """``min``, ``max`` or None (no "best": e.g. Self-BLEU, whose lower values are not simply better)."""
    if name.startswith(LOWER_IS_BETTER):
        return "min"
    if name.startswith("bleu"):
        return "max"
    return None


def _main_metrics(records: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for r in records:
        for key, value in r.items():
            if key not in NOT_METRICS and _numeric(value) and key.startswith(MAIN):
                names.setdefault(key)
    return list(names)


def run_summary(run_dir: str | Path, records: list[dict[str, Any]], wall_s: float) -> str:
    """The end-of-run summary: for each main metric (NLL, losses, BLEU, Self-BLEU, FED) its best value (where
    lower or higher is simply better) with where it was reached, and its final value; the wall time; the files
    in the run directory with their sizes."""
    run_dir = Path(run_dir)
    lines = [f"summary of {run_dir}  (wall time {_duration(wall_s)} this session"
             + (f", {_duration(records[-1]['elapsed_s'])} of training in all)" if records and
                _numeric(records[-1].get("elapsed_s")) else ")")]
    names = _main_metrics(records)
    width = max((len(n) for n in names), default=6)
    for name in names:
        points = [(r, r[name]) for r in records if _numeric(r.get(name))]
        final_r, final = points[-1]
        text = f"  {name:<{width}}  final {final:.4f} ({_where(final_r)})"
        better = _better(name)
        if better is not None and len(points) > 1:
            best_r, best = (min if better == "min" else max)(points, key=lambda p: p[1])
            text += f"   best {best:.4f} ({_where(best_r)})"
        lines.append(text)
    files = sorted(p for p in run_dir.iterdir() if not p.name.startswith(".")) if run_dir.is_dir() else []
    shown = [f"{p.name}/" if p.is_dir() else f"{p.name} ({_size(p.stat().st_size)})" for p in files]
    lines.append("  files: " + ", ".join(shown))
    return "\n".join(lines)


def _where(record: dict[str, Any]) -> str:
    unit = "epoch" if "epoch" in record else "step"
    return f"{record.get('phase', '?')} {unit} {record.get(unit, '?')}"


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
