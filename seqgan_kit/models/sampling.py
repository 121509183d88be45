"""Exact categorical samplers over logits, batched.

Three exact ways to draw one token per row from ``softmax(logits / temperature)``:

- ``multinomial``: ``torch.multinomial`` on the probabilities.
- ``inverse_cdf``: one uniform per row, located in the cumulative sum with ``searchsorted``.
- ``gumbel_max``: ``argmax(logits + Gumbel noise)``.

All three sample the same distribution. ``eval/bench_sampling.py`` times them; ``DEFAULT_SAMPLER`` is the
fastest on CPU at the generator's sizes (see ``eval/results/sampling.md``). ``temperature == 0`` is greedy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Sampler = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _multinomial(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _inverse_cdf(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    probs = torch.softmax(logits.float(), dim=-1)
    cdf = probs.cumsum(dim=-1)  # [B, V]
    u = torch.rand(cdf.shape[:-1] + (1,), generator=gen, device=cdf.device, dtype=cdf.dtype)  # [B, 1]
    u = u * cdf[..., -1:]  # scale to the actual total so rounding never runs past the end
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1)  # [B]
    return idx.clamp_(max=logits.shape[-1] - 1)


def _gumbel_max(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(logits.shape, generator=gen, device=logits.device, dtype=torch.float32)
    # -log(-log U), with U kept away from 0 so the noise is finite.
    gumbel = -torch.log(-torch.log(u.clamp_(min=torch.finfo(torch.float32).tiny)))
    return (logits.float() + gumbel).argmax(dim=-1)


SAMPLERS: dict[str, Sampler] = {
    "multinomial": _multinomial,
    "inverse_cdf": _inverse_cdf,
    "gumbel_max": _gumbel_max,
}
DEFAULT_SAMPLER = "inverse_cdf"


def _check_finite(logits: torch.Tensor) -> None:
    """ValueError unless every row's maximum is finite: one reduction catches NaN (max propagates it), +inf and
    rows that are all -inf, while -inf entries beside finite ones pass."""
    if logits.numel() and not bool(torch.isfinite(logits.amax(dim=-1)).all()):
        raise ValueError("non-finite probabilities: a row of logits holds NaN or +inf, or no finite entry")


def sample_categorical(
    logits: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """Draw one index per row.

    logits: ``[..., V]`` unnormalised log-probabilities. Returns ``[...]`` int64 indices.
    ``temperature == 0`` returns the argmax (greedy); otherwise samples ``softmax(logits / temperature)``.

    ``-inf`` entries are legal (banned tokens); a row with NaN, ``+inf`` or no finite entry at all has no
    distribution and raises ValueError ("non-finite probabilities"), as does a NaN or infinite temperature.
    """
    if not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number, got {temperature}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature != 0 and temperature != 1.0:
        logits = logits / temperature
    _check_finite(logits)
    if temperature == 0:
        return logits.argmax(dim=-1)
    try:
        fn = SAMPLERS[method]
    except KeyError:
        raise ValueError(f"unknown sampler {method!r}; choose one of {sorted(SAMPLERS)}") from None
    lead = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1])  # [N, V]
    return fn(flat, generator).reshape(lead)
