"""MaskGAN's masks (Fedus et al. 2018, released code ``research/maskgan``): which tokens the in-filler sees.

``present [B, T]`` bool: True where the real token is given to the model, False where it must be filled in.
``is_present_rate`` is the fraction kept (0.5 in every published run). Token 0 is never masked.

- ``contiguous``: one span of ``int((1 - rate) * T) - 1`` masked tokens per row, starting uniformly in
  ``[1, T - len]`` (both ends included), so the span never touches token 0 and never runs past the end.
- ``random``: each token kept independently with probability ``rate``.

A fresh mask is drawn for every training step, from the caller's random stream. Evaluating an in-filler also
knows ``prefix:K`` (the first ``K`` tokens kept, the rest masked): a :class:`MaskSpec` names one of the three
and :func:`build_present` draws it reproducibly from a seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

STRATEGIES = ("contiguous", "random")
PREFIX = "prefix"
_PREFIX_SPEC = re.compile(r"prefix:(\d+)")


def masked_span_length(seq_len: int, rate: float) -> int:
    """Tokens in the ``contiguous`` span: ``int((1 - rate) * T) - 1`` (at least 0)."""
    return max(int((1.0 - rate) * seq_len) - 1, 0)


def make_present(batch: int, seq_len: int, rate: float, strategy: str = "contiguous",
                 generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """A fresh ``present [batch, seq_len]`` bool mask (drawn on the CPU from ``generator``, then moved)."""
    if strategy == "contiguous":
        length = masked_span_length(seq_len, rate)
        present = torch.ones(batch, seq_len, dtype=torch.bool)
        if length > 0:
            start = torch.randint(1, seq_len - length + 1, (batch,), generator=generator)  # [B] in [1, T - len]
            pos = torch.arange(seq_len).unsqueeze(0)  # [1, T]
            present = ~((pos >= start.unsqueeze(1)) & (pos < (start + length).unsqueeze(1)))
    elif strategy == "random":
        present = torch.rand(batch, seq_len, generator=generator) < rate
    else:
        raise ValueError(f"unknown mask strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    present[:, 0] = True
    return present.to(device) if device is not None else present


@dataclass(frozen=True)
class MaskSpec:
    """Which tokens an in-filling evaluation hides: ``strategy`` is ``contiguous``, ``random`` (both drawn by
    :func:`make_present`) or ``prefix`` (the first ``keep`` tokens kept, the rest masked)."""

    strategy: str
    keep: int = 0

    def __str__(self) -> str:
        return f"{PREFIX}:{self.keep}" if self.strategy == PREFIX else self.strategy


def parse_mask(text: str) -> MaskSpec:
    """``"contiguous"``, ``"random"`` or ``"prefix:K"`` (K >= 1) -> MaskSpec; ValueError otherwise."""
    if text in STRATEGIES:
        return MaskSpec(text)
    match = _PREFIX_SPEC.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown mask {text!r}: expected contiguous, random or prefix:K (K tokens kept)")
    keep = int(match.group(1))
    if keep < 1:
        raise ValueError(f"mask {text!r}: prefix:K keeps K >= 1 tokens (token 0 is always given)")
    return MaskSpec(PREFIX, keep)


def prefix_present(batch: int, seq_len: int, keep: int) -> torch.Tensor:
    """``present [batch, seq_len]`` bool: the first ``keep`` positions True, the rest False."""
    return (torch.arange(seq_len) < keep).unsqueeze(0).expand(batch, seq_len).clone()


def build_present(spec: MaskSpec, batch: int, seq_len: int, rate: float, seed: int) -> torch.Tensor:
    """``present [batch, seq_len]`` bool on the CPU (True = kept), reproducible from ``seed``; token 0 is kept.

    ``rate`` (the fraction kept, ``contiguous``/``random`` only) goes to :func:`make_present` with a fresh
    ``torch.Generator().manual_seed(seed)``. The caller applies the model's ``keep_structure`` (EOS and padding
    are never filled) afterwards.
    """
    if spec.strategy == PREFIX:
        if not 1 <= spec.keep < seq_len:
            raise ValueError(f"prefix:{spec.keep} needs 1 <= K < {seq_len} (the sequence length)")
        return prefix_present(batch, seq_len, spec.keep)
    return make_present(batch, seq_len, rate, spec.strategy, torch.Generator().manual_seed(seed))
