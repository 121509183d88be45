"""The SeqGAN policy-gradient (REINFORCE) generator loss.

The paper's objective, as the reference implements it, is summed over the batch and the time steps::

    loss = - sum_{b, t} log G(y_t | y_<t) * Q_t

with the rollout rewards ``Q`` treated as constants (no gradient flows into them) and no baseline. Because the
loss is a sum, its scale grows with ``B * T``; with Adam that mostly cancels, but it interacts with gradient
clipping (the reference clips the global norm at 5.0 on this summed loss).

``baseline=True`` subtracts, **per position t**, the mean reward over the batch (over the unmasked rows):
the rewards of different positions have different scales (the last one is D of the full sequence, the
earlier ones are Monte Carlo averages), so a per-position mean is the natural control variate. It leaves the
expected gradient unchanged up to the usual O(1/B) leave-one-in bias and reduces its variance.
"""

from __future__ import annotations

import torch


def policy_gradient_loss(
    log_probs: torch.Tensor,
    rewards: torch.Tensor,
    mask: torch.Tensor | None = None,
    baseline: bool = False,
) -> torch.Tensor:
    """REINFORCE loss ``-sum_{b,t} mask * log_probs * A`` (a scalar, differentiable in ``log_probs`` only).

    Args:
        log_probs: ``[B, T]`` per-token ``log G(y_t | y_<t)`` (e.g. ``SequenceGenerator.log_probs(seqs)``).
        rewards: ``[B, T]`` rewards ``Q_t`` (detached here).
        mask: optional ``[B, T]`` bool/0-1 tensor; positions where it is false/0 (padding) contribute nothing
            and are left out of the baseline mean.
        baseline: if true, ``A = Q - mean_b Q`` per position (masked mean); else ``A = Q``.

    Returns:
        Scalar loss.
    """
    if log_probs.dim() != 2 or rewards.shape != log_probs.shape:
        raise ValueError(f"log_probs and rewards must both be [B, T], got {tuple(log_probs.shape)} and "
                         f"{tuple(rewards.shape)}")
    if mask is not None and mask.shape != log_probs.shape:
        raise ValueError(f"mask must be [B, T] like log_probs {tuple(log_probs.shape)}, got "
                         f"{tuple(mask.shape)}")
    adv = rewards.detach().to(log_probs.dtype)  # [B, T]
    weight = None if mask is None else mask.to(log_probs.dtype)  # [B, T] of 0/1
    if baseline:
        if weight is None:
            adv = adv - adv.mean(dim=0, keepdim=True)  # [B, T] - [1, T]
        else:
            count = weight.sum(dim=0, keepdim=True).clamp(min=1)  # [1, T]
            mean = (adv * weight).sum(dim=0, keepdim=True) / count  # [1, T]
            adv = adv - mean
    terms = log_probs * adv  # [B, T]
    if weight is not None:
        terms = terms * weight
    return -terms.sum()
