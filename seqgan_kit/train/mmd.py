"""The maximum mean discrepancy of TextGAN's feature matching (Zhang et al. 2017, as Texygen computes it).

For feature batches ``x [N, D]`` and ``y [M, D]``, with the squared Euclidean distance ``d(a, b) = |a - b|^2``
and the kernel a sum of Gaussians over the widths ``sigmas``::

    k(a, b) = sum_s exp(-d(a, b) / (2 s))
    MMD^2   = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j)

(the biased V-statistic: every pair, the diagonals included), clamped at 0 with no gradient below it. Texygen's
``gaussian_kernel_matrix`` divides by ``2 s``, not ``2 s^2``: its "sigmas" are variances, and they are kept as
such (:data:`TEXYGEN_SIGMAS`, the 19 widths from 1e-6 to 1e6).

The distances come from the differences themselves (``[N, M, D]``), not from the Gram expansion
``|a|^2 + |b|^2 - 2 a.b``: with widths down to 1e-6 the expansion's rounding (1e-5 at distance 0) would turn
``k(a, a) = 19`` into ``18 + e^-5``. The kernel is float32 under any precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

TEXYGEN_SIGMAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 100.0,
                  1e3, 1e4, 1e5, 1e6)
"""The kernel widths of Texygen's TextGAN (``gaussian_kernel_matrix``), each used as ``exp(-d / (2 s))``."""


def pairwise_sq_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x [N, D]``, ``y [M, D]`` -> ``[N, M]``: ``|x_i - y_j|^2``, exactly 0 for equal rows."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected feature matrices [N, D] and [M, D], got {tuple(x.shape)} and {tuple(y.shape)}")
    return (x[:, None, :] - y[None, :, :]).square().sum(dim=-1)  # [N, 1, D] - [1, M, D] -> [N, M, D] -> [N, M]


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = TEXYGEN_SIGMAS) -> torch.Tensor:
    """``[N, D]``, ``[M, D]`` -> ``[N, M]``: ``sum_s exp(-|x_i - y_j|^2 / (2 s))``."""
    dist = pairwise_sq_distances(x.float(), y.float())  # [N, M]
    beta = 1.0 / (2.0 * torch.tensor(sigmas, dtype=torch.float32, device=dist.device))  # [S]
    return torch.exp(-dist[..., None] * beta).sum(dim=-1)  # [N, M, 1] * [S] -> [N, M, S] -> [N, M]


def mmd2(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = TEXYGEN_SIGMAS) -> torch.Tensor:
    """Texygen's ``calc_mmd``: the biased squared MMD of ``x [N, D]`` and ``y [M, D]``, clamped at 0 (scalar,
    float32, differentiable in both)."""
    cost = (gaussian_kernel(x, x, sigmas).mean() + gaussian_kernel(y, y, sigmas).mean()
            - 2.0 * gaussian_kernel(x, y, sigmas).mean())
    return torch.where(cost > 0, cost, torch.zeros_like(cost))
