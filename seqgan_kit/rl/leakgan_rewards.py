"""LeakGAN's Manager rewards: Monte Carlo rollouts at every segment boundary, scored by the discriminator, then
the bootstrapped rescaled activation (Guo et al. 2018, section "Training techniques"; official ``get_reward`` and
``rescale``).

For a batch of generated sequences ``[B, T]`` with segments of ``c`` tokens (``n = T / c``):

- segment ``k < n``: the mean of ``D(y)`` over ``num_rollouts`` completions of the prefix ``y[:k c]`` sampled
  from the generator; segment ``n``: ``D(y)`` itself;
- rescaled per segment over the batch by rank: with ``i`` the dense ascending rank (1 = lowest, equal values
  share a rank) of a reward among the batch's, ``sigma(delta * (i / B - 0.5))`` (the official ``redistribution``
  with ``delta`` = 16); the official code then divides by ``num_rollouts``, kept here.

The official ``rescale`` orders the rewards by a Python 2 dict's iteration order (hash order, not value order),
which the paper's formula and the code's own variable names say is meant to be the rank: here it is the rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.leakgan_generator import LeakGANGenerator


@torch.no_grad()
def segment_rollout_rewards(
    generator: LeakGANGenerator,
    prob_real: Callable[[torch.Tensor], torch.Tensor],
    samples: torch.Tensor,
    num_rollouts: int,
) -> torch.Tensor:
    """Mean ``prob_real`` of rollouts from every segment boundary: ``samples [B, T]`` -> ``[B, n]`` in [0, 1].

    All ``num_rollouts`` completions of one boundary are sampled as one batch of ``num_rollouts * B`` rows, from
    the generator's state after the prefix (one incremental pass over the samples gives every boundary's state).
    """
    b, t = samples.shape
    c = generator.step_size
    n = t // c
    rewards = torch.zeros(b, n, device=samples.device)
    state = generator.initial_state(b)
    for pos in range(t - c):
        state = generator.advance(samples[:, pos], state)
        given = pos + 1
        if given % c:
            continue
        tiled = generator.repeat_state(state, num_rollouts)  # [R*B] rows, row r*B + b
        prefix = samples[:, :given].repeat(num_rollouts, 1)  # [R*B, given]
        done = generator.eos_seen(prefix)[:, -1] if generator.variable_length else None
        rest = generator.generate(tiled, t - given, position=given, done=done)  # [R*B, T-given]
        scores = prob_real(torch.cat([prefix, rest], dim=1)).float()  # [R*B]
        rewards[:, given // c - 1] = scores.view(num_rollouts, b).mean(dim=0)  # [R*B] -> [R, B] -> [B]
    rewards[:, n - 1] = prob_real(samples).float()
    return rewards


def rescaled_activation(rewards: torch.Tensor, delta: float = 16.0) -> torch.Tensor:
    """The rank rescaling of each column over the batch: ``[B, n]`` -> ``[B, n]`` in (0, 1) (see the module
    docstring); equal rewards share a rank."""
    b = rewards.shape[0]
    ordered, order = rewards.sort(dim=0)  # [B, n] each
    new = torch.ones_like(ordered, dtype=torch.long)
    new[1:] = (ordered[1:] != ordered[:-1]).long()
    dense = new.cumsum(dim=0)  # [B, n]: 1 .. (distinct values) down each sorted column
    rank = torch.empty_like(dense).scatter_(0, order, dense)
    return torch.sigmoid(delta * (rank.to(rewards.dtype) / b - 0.5))
