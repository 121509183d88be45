"""MaskGAN's masks (Fedus et al. 2018, released code ``research/maskgan``): which tokens the in-filler sees.

``present [B, T]`` bool: True where the real token is given to the model, False where it must be filled in.
``is_present_rate`` (``rate``) is the fraction kept (0.5 in every published run). Every mask is drawn inside
each row's own *fillable length* ``L`` (:func:`fillable_lengths`: the tokens before EOS of a sentence; all
``T`` positions of a fixed-length row, an oracle sequence or a window of running text), so EOS and the padding
after it are never masked:

- ``contiguous``: one span of ``n = int((1 - rate) * L)`` masked tokens per row (:func:`masked_span_length`;
  at most ``L - 1``), its start uniform over ``[1, L - n]`` (both ends included): the span lies inside the
  sentence and never hides token 0, as the released code's contiguous masks never do. A row with ``n = 0``
  (``L = 1`` at rate 0.5, or an empty sentence) has nothing masked.
- ``random``: each of the ``L`` tokens masked independently with probability ``1 - rate``; token 0 may be
  masked too, as in the released code.

Deliberate difference: the released code draws these masks on fixed 20-token windows of running text with a
span of ``int((1 - rate) * T) - 1`` (one token fewer); here the span is ``int((1 - rate) * L)`` on every kind of
row (windows too, ``L = T``). Masks were once sized on the padded length ``T`` of a sentence (a span mostly
running into EOS and padding, and no masked token at all in half of the COCO rows); they no longer are.

A fresh mask is drawn for every training step, from the caller's random stream. Evaluating an in-filler also
knows ``prefix:K`` (the first ``K`` tokens kept, the rest of the sentence masked): a :class:`MaskSpec` names
one of the three and :func:`build_present` draws it reproducibly from a seed. Training and evaluation both draw
through :func:`make_present`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

STRATEGIES = ("contiguous", "random")
PREFIX = "prefix"
_PREFIX_SPEC = re.compile(r"prefix:(\d+)")


def fillable_lengths(seqs: torch.Tensor, eos_token: int | None) -> torch.Tensor:
    """``seqs [B, T]`` -> ``L [B]`` int64: the position of each row's first EOS (its tokens before EOS), or ``T``
    for a row without EOS (and for every row when ``eos_token`` is None: fixed-length sequences)."""
    t = seqs.shape[1]
    if eos_token is None:
        return torch.full((seqs.shape[0],), t, dtype=torch.long, device=seqs.device)
    is_eos = seqs == eos_token  # [B, T]
    first = is_eos.int().argmax(dim=1)  # [B]: 0 when there is no EOS
    return torch.where(is_eos.any(dim=1), first, torch.full_like(first, t)).long()


def masked_span_length(length: int | torch.Tensor, rate: float) -> int | torch.Tensor:
    """Tokens in the ``contiguous`` span of a row of ``length`` fillable tokens: ``int((1 - rate) * L)``, at most
    ``L - 1`` (token 0 stays given; only rate 0 reaches it) and at least 0. ``length``: an int or an int64
    tensor (computed in float64, so a tensor gives the same integers as Python's ``int``)."""
    if isinstance(length, torch.Tensor):
        n = ((1.0 - rate) * length.double()).floor().long()
        return torch.minimum(n, (length - 1).clamp(min=0))
    return max(min(int((1.0 - rate) * length), length - 1), 0)


def make_present(lengths: torch.Tensor, seq_len: int, rate: float, strategy: str = "contiguous",
                 generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """A fresh ``present [B, seq_len]`` bool mask for rows of ``lengths [B]`` fillable tokens (see the module
    docstring); positions at or after a row's length are always present. Drawn on the CPU from ``generator``
    (``contiguous``: ``B`` uniforms; ``random``: ``B * seq_len``), then moved to ``device``."""
    lengths = lengths.detach().to("cpu", torch.long)  # [B]
    batch = lengths.shape[0]
    pos = torch.arange(seq_len).unsqueeze(0)  # [1, T]
    if strategy == "contiguous":
        n = masked_span_length(lengths, rate)  # [B]
        starts = (lengths - n).clamp(min=1)  # [B]: how many starts in [1, L - n]
        u = torch.rand(batch, generator=generator, dtype=torch.float64)  # [B]
        start = 1 + (u * starts.double()).floor().long().clamp(max=starts - 1)  # [B] uniform in [1, L - n]
        masked = (pos >= start.unsqueeze(1)) & (pos < (start + n).unsqueeze(1))  # [B, T]
    elif strategy == "random":
        masked = ~(torch.rand(batch, seq_len, generator=generator) < rate) & (pos < lengths.unsqueeze(1))
    else:
        raise ValueError(f"unknown mask strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    present = ~masked
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


def prefix_present(lengths: torch.Tensor, seq_len: int, keep: int) -> torch.Tensor:
    """``present [B, seq_len]`` bool for rows of ``lengths [B]``: the first ``keep`` positions and everything
    from each row's length on True, the tokens in between False."""
    pos = torch.arange(seq_len).unsqueeze(0)  # [1, T]
    return (pos < keep) | (pos >= lengths.detach().cpu().unsqueeze(1))


def build_present(spec: MaskSpec, lengths: torch.Tensor, seq_len: int, rate: float, seed: int) -> torch.Tensor:
    """``present [B, seq_len]`` bool on the CPU (True = kept) for rows of ``lengths [B]`` fillable tokens,
    reproducible from ``seed``.

    ``rate`` (the fraction kept, ``contiguous``/``random`` only) goes to :func:`make_present` with a fresh
    ``torch.Generator().manual_seed(seed)``.
    """
    if spec.strategy == PREFIX:
        if not 1 <= spec.keep < seq_len:
            raise ValueError(f"prefix:{spec.keep} needs 1 <= K < {seq_len} (the sequence length)")
        return prefix_present(lengths, seq_len, spec.keep)
    return make_present(lengths, seq_len, rate, spec.strategy, torch.Generator().manual_seed(seed))
