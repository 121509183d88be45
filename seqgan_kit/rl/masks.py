"""MaskGAN's masks (Fedus et al. 2018, released code ``research/maskgan``): which tokens the in-filler sees.

``present [B, T]`` bool: True where the real token is given to the model, False where it must be filled in.
``is_present_rate`` is the fraction kept (0.5 in every published run). Token 0 is never masked.

- ``contiguous``: one span of ``int((1 - rate) * T) - 1`` masked tokens per row, starting uniformly in
  ``[1, T - len]`` (both ends included), so the span never touches token 0 and never runs past the end.
- ``random``: each token kept independently with probability ``rate``.

A fresh mask is drawn for every training step, from the caller's random stream.
"""

from __future__ import annotations

import torch

STRATEGIES = ("contiguous", "random")


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
