"""Filling a template's rows with a MaskGAN in-filler: each blank is sampled left to right given everything
present, before and after it (the in-filler's encoder reads the whole masked sequence); real tokens are copied.

A template whose plain blanks can be sized several ways is filled in every sizing, and fill ``i`` keeps the
sizing whose ``i``-th fill the run's language model (the MLE generator inside the in-filler) finds most likely
per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import UserError

MAX_FILLS = 100_000
"""At most this many fills of one template (``-n``)."""
ROWS_AT_ONCE = 4096
"""Rows (sizings x fills) filled in one batch; a larger ``-n`` is filled in chunks of fills."""


def check_fill_args(n: int, temperature: float) -> None:
    """UserError, before any model is loaded, for a number of fills or a temperature that cannot be used."""
    if not 1 <= n <= MAX_FILLS:
        raise UserError(f"-n must be between 1 and {MAX_FILLS:,}, got {n}")
    if not math.isfinite(temperature):
        raise UserError(f"--temperature must be a finite number, got {temperature}")
    if temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {temperature}")


def require_infiller(gen: torch.nn.Module, path: Path | str) -> None:
    """UserError unless ``gen`` (loaded from ``path``) is a MaskGAN in-filler."""
    if "infilling" not in getattr(gen, "capabilities", ()):
        raise UserError(f"{path}: its generator (kind {getattr(gen, 'kind', '?')!r}) does not fill blanks: train it "
                        f"with algorithm = \"maskgan\"")


def fill_chunks(gen: torch.nn.Module, rows: torch.Tensor, present: torch.Tensor, n: int, temperature: float,
                rng: torch.Generator) -> Iterator[torch.Tensor]:
    """The ``n`` fills of one template, given as ``S`` sized rows ``rows, present [S, T]``, as consecutive
    chunks ``[k, T]`` (one chunk when ``S * n`` <= :data:`ROWS_AT_ONCE`), each from :func:`fill_best`."""
    per_chunk = max(1, ROWS_AT_ONCE // len(rows))
    for lo in range(0, n, per_chunk):
        yield fill_best(gen, rows, present, min(per_chunk, n - lo), temperature, rng)


def fill_best(gen: torch.nn.Module, rows: torch.Tensor, present: torch.Tensor, n: int, temperature: float,
              rng: torch.Generator) -> torch.Tensor:
    """``n`` fills ``[n, T]`` of a template given as ``S`` sized rows ``[S, T]``: every sizing is filled ``n`` times
    (one batch), and fill ``i`` is the sizing whose ``i``-th fill has the highest mean per-token log-likelihood
    under the run's language model (``gen.lm``; the in-filler itself when there is one sizing)."""
    with torch.no_grad():
        n_sizings, length = rows.shape
        batch = rows.repeat_interleave(n, dim=0).to(gen.device)  # [S*n, T]: sizing-major
        mask = present.repeat_interleave(n, dim=0).to(gen.device)  # [S*n, T]
        filled, _ = gen.fill(batch, mask, temperature=temperature, generator=rng)  # [S*n, T]
        if n_sizings == 1:
            return filled
        lm = gen.lm
        score = lm.log_probs(filled).sum(1) / lm.token_mask(filled).sum(1).clamp(min=1)  # [S*n]
        best = score.view(n_sizings, n).argmax(0)  # [n]
        # [S*n, T] -> [S, n, T]: fill i of the best sizing for i
        return filled.view(n_sizings, n, length)[best, torch.arange(n, device=best.device)]  # [n, T]
