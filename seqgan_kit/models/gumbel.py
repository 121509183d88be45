"""Gumbel-softmax relaxation helpers: Gumbel noise and the inverse-temperature schedules of RelGAN.

- :func:`gumbel_noise`: ``g = -log(-log(u + 1e-10) + 1e-10)`` with ``u ~ U[0, 1)`` (the epsilon form of RelGAN's
  ``add_gumbel``). ``argmax(o + g)`` is an exact sample of ``softmax(o)`` (the Gumbel-max trick);
  ``softmax(beta * (o + g))`` is its relaxation with inverse temperature ``beta`` (Jang et al. 2017).
  The noise is always float32: drawn in bfloat16, ``u`` has 8 significant bits, its largest value is
  ``1 - 2**-8`` and the noise tops out near 5.5 instead of ~16.6, which biases the "exact" samples
  (``tests/test_precision.py``).
- :func:`gumbel_perturb`: ``o + g`` in float32 whatever the precision of ``o`` or an enclosing autocast.
- :func:`inverse_temperature`: ``beta`` after ``i`` adversarial steps, RelGAN's ``get_fixed_temperature``.
  RelGAN hard-codes the horizon ``N = 5000`` while its runs stop at 2,000-3,000 steps, so beta never reaches
  ``beta_max`` there (``exp`` at step 3000 of 5000 with beta_max 1000: 1000^0.6 = 63). Here the horizon is the
  ``anneal_horizon`` key (default 5000, that behaviour); set it to the number of steps to reach ``beta_max``.

The rollout that uses them is :meth:`seqgan_kit.models.generator.SequenceGenerator.gumbel_rollout`.
"""

from __future__ import annotations

import math

import torch

GUMBEL_EPS = 1e-10
SCHEDULES = ("const", "lin", "exp", "log", "sigmoid", "quad", "sqrt")
RELGAN_HORIZON = 5000
"""RelGAN's fixed ``N`` in ``get_fixed_temperature``."""


def gumbel_noise(shape: tuple[int, ...], device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise of ``shape``, float32: ``-log(-log(u + 1e-10) + 1e-10)``, ``u ~ U[0, 1)``."""
    u = torch.rand(shape, device=device, dtype=torch.float32, generator=generator)
    return -torch.log(-torch.log(u + GUMBEL_EPS) + GUMBEL_EPS)


def gumbel_perturb(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``logits [..., V]`` (any float dtype) -> ``logits + g`` as float32 ``[..., V]``, ``g`` fresh Gumbel noise.

    ``argmax`` of the result is an exact sample of ``softmax(logits)``; the add runs in float32 (and is
    differentiable in ``logits``) even under a bfloat16 autocast.
    """
    return logits.float() + gumbel_noise(tuple(logits.shape), logits.device, generator)


def inverse_temperature(schedule: str, beta_max: float, i: float, horizon: int = RELGAN_HORIZON) -> float:
    """The inverse temperature ``beta`` after ``i`` adversarial steps (RelGAN's formulas, ``N = horizon``).

    ``const``: beta_max; ``lin``: 1 + i/(N-1) (beta_max-1); ``exp``: beta_max^(i/N);
    ``log``: 1 + (beta_max-1) log(i+1)/log(N); ``sigmoid``: 1 + (beta_max-1)/(1 + exp((N/2 - i) 20/N));
    ``quad``: 1 + (beta_max-1) i^2/(N-1)^2; ``sqrt``: 1 + (beta_max-1) sqrt(i)/sqrt(N-1).
    """
    n, b = float(horizon), float(beta_max)
    if schedule == "const":
        return b
    if schedule == "lin":
        return 1.0 + i / (n - 1.0) * (b - 1.0)
    if schedule == "exp":
        return b ** (i / n)
    if schedule == "log":
        return 1.0 + (b - 1.0) / math.log(n) * math.log(i + 1.0)
    if schedule == "sigmoid":
        return (b - 1.0) / (1.0 + math.exp((n / 2.0 - i) * 20.0 / n)) + 1.0
    if schedule == "quad":
        return (b - 1.0) / (n - 1.0) ** 2 * i ** 2 + 1.0
    if schedule == "sqrt":
        return (b - 1.0) / math.sqrt(n - 1.0) * math.sqrt(i) + 1.0
    raise ValueError(f"unknown beta schedule {schedule!r} (expected one of {', '.join(SCHEDULES)})")
