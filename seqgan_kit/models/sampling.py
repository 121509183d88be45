"""Exact categorical samplers over logits, batched.

Four exact ways to draw one token per row from ``softmax(logits / temperature)``:

- ``inverse_cdf`` (the default): one uniform ``u`` per row; the token is the first index whose running sum of
  ``exp(logits / temperature - c)`` exceeds ``u`` times the row's total (``c`` a per-row constant that keeps
  the exponentials in range). One pass of ``exp`` over the row and nothing else of size ``V``: no
  probabilities, no normalisation, no stored CDF, and an optional bias ``[V]`` added inside the pass (so a
  caller computing ``h @ W.T + b`` can skip the bias add's own pass). On CPU a numba kernel does the pass and
  the search (:mod:`seqgan_kit.models._sampling_kernels`, which also says how ``c`` is chosen); elsewhere it
  is ``amax``, ``exp``, ``cumsum`` and ``searchsorted``.
- ``softmax_inverse_cdf``: the previous implementation of the same mapping (softmax, cumulative sum of the
  probabilities, ``searchsorted``), a few times slower on CPU; kept for comparison
  (``eval/bench_rollout.py --impls batched,previous``).
- ``multinomial``: ``torch.multinomial`` on the probabilities.
- ``gumbel_max``: ``argmax(logits + Gumbel noise)``.

All four sample the same distribution (``tests/test_sampling.py``). ``inverse_cdf`` and
``softmax_inverse_cdf`` consume the same random numbers (one float32 uniform per row, in row order, drawn
before any work is split over threads) and map them to tokens by the same inverse CDF, so they draw the same
token except where ``u`` falls within float32 rounding of an interval end (a few draws in 1,000 at V = 5000).
``temperature == 0`` is greedy. Every sampler works in float32 whatever the logits' dtype (bfloat16 logits of
a bf16 run are widened first): probabilities, cumulative sums and Gumbel noise are never bfloat16.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Sampler = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]

NON_FINITE = "non-finite probabilities: a row of logits holds NaN or +inf, or no finite entry"

PARALLEL_MIN_ROWS = 32
"""CPU ``inverse_cdf``: with ``k > 1`` torch threads the numba kernel runs on ``min(k, rows // 32)`` threads
(the caller's and pool threads, each on a contiguous share of the rows; the kernel releases the GIL). The
uniforms are drawn before the split, so the draws do not depend on the thread count."""


def _multinomial(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _softmax_inverse_cdf(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
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


def _inverse_cdf(logits: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """``inverse_cdf`` on logits already divided by the temperature (the :data:`SAMPLERS` signature)."""
    return _inverse_cdf_exp(logits, None, 1.0, gen)


def _inverse_cdf_exp(logits: torch.Tensor, bias: torch.Tensor | None, scale: float,
                     gen: torch.Generator | None) -> torch.Tensor:
    """One draw per row of ``softmax(scale * (logits + bias))``: ``logits [N, V]``, ``bias [V]`` or None,
    ``scale > 0``. One float32 uniform per row from ``gen``, in row order. ValueError for a row with NaN,
    ``+inf`` or no finite entry (after the bias and the scale)."""
    n, v = logits.shape
    u = torch.rand(n, generator=gen, device=logits.device, dtype=torch.float32)  # [N]
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=logits.device)
    if logits.device.type == "cpu":
        return _draw_cpu(logits, bias, scale, u)
    x = logits.float() if bias is None else logits.float() + bias.float()  # [N, V]
    row_max = x.amax(dim=-1)  # [N]
    _check_finite(row_max * scale)
    e = torch.exp((x - row_max.unsqueeze(1)) * scale)  # [N, V], every exponent <= 0
    cdf = e.cumsum(dim=-1)  # [N, V]
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)  # [N]
    return idx.clamp_(max=v - 1)


def _draw_cpu(logits: torch.Tensor, bias: torch.Tensor | None, scale: float, u: torch.Tensor) -> torch.Tensor:
    """The numba kernel (:mod:`._sampling_kernels`): rows spread over the torch threads when there are enough."""
    import numpy as np

    from . import _sampling_kernels as kernels  # numba: compiled, or loaded from its cache, on first use

    n, v = logits.shape
    x = logits.detach().float().contiguous().numpy()  # [N, V], no copy for contiguous float32
    b = np.zeros(v, np.float32) if bias is None else bias.detach().float().contiguous().numpy()  # [V]
    out = np.empty(n, dtype=np.int64)
    threads = min(torch.get_num_threads(), n // PARALLEL_MIN_ROWS)
    if threads > 1:
        kernels.draw_rows_threaded(threads, x, b, np.float32(scale), u.numpy(), out)
    else:
        kernels.draw_rows(x, b, np.float32(scale), u.numpy(), out)
    if (out < 0).any():  # the kernel found a row without a distribution
        raise ValueError(NON_FINITE)
    return torch.from_numpy(out)


SAMPLERS: dict[str, Sampler] = {
    "inverse_cdf": _inverse_cdf,
    "softmax_inverse_cdf": _softmax_inverse_cdf,
    "multinomial": _multinomial,
    "gumbel_max": _gumbel_max,
}
DEFAULT_SAMPLER = "inverse_cdf"


def _check_finite(row_max: torch.Tensor) -> None:
    """ValueError unless every row's maximum is finite: the maximum catches NaN (max propagates it), +inf and
    rows that are all -inf, while -inf entries beside finite ones pass."""
    if row_max.numel() and not bool(torch.isfinite(row_max).all()):
        raise ValueError(NON_FINITE)


def sample_categorical(
    logits: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw one index per row.

    logits: ``[..., V]`` unnormalised log-probabilities; ``bias`` (optional, ``[V]``) is added to every row
    first (``inverse_cdf`` adds it inside its one pass: a caller with ``x @ W.T + b`` can pass ``x @ W.T`` and
    ``b`` and skip a pass over ``[..., V]``). Returns ``[...]`` int64 indices.
    ``temperature == 0`` returns the argmax (greedy); otherwise samples ``softmax((logits + bias) / temperature)``.

    ``-inf`` entries are legal (banned tokens); a row with NaN, ``+inf`` or no finite entry at all (after the
    bias and the temperature) has no distribution and raises ValueError ("non-finite probabilities"), as does
    a NaN or infinite temperature.
    """
    if not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number, got {temperature}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    lead = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1])  # [N, V]
    if method == "inverse_cdf" and temperature != 0:
        # The bias and 1 / temperature are applied inside the sampler's one pass over the logits (float32).
        return _inverse_cdf_exp(flat, bias, 1.0 / temperature, generator).reshape(lead)  # [N] -> [...]
    flat = flat.float()  # bfloat16 logits (a bf16 run): the bias, temperature and probabilities in float32
    if bias is not None:
        flat = flat + bias.float()
    if temperature != 0 and temperature != 1.0:
        flat = flat / temperature
    if flat.numel():
        _check_finite(flat.amax(dim=-1))
    if temperature == 0:
        return flat.argmax(dim=-1).reshape(lead)  # [N] -> [...]
    try:
        fn = SAMPLERS[method]
    except KeyError:
        raise ValueError(f"unknown sampler {method!r}; choose one of {sorted(SAMPLERS)}") from None
    return fn(flat, generator).reshape(lead)  # [N] -> [...]
