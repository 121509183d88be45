"""MaliGAN's generator objective (Che et al., 2017): normalised importance weights on completions of real prefixes.

With an optimal discriminator ``D``, ``r_D(x) = D(x) / (1 - D(x))`` estimates ``p_data(x) / p_G(x)``, so weighting
generator samples by ``r_D`` turns their log-likelihood gradient into an estimate of the MLE gradient on the data.
The paper's sequential algorithm with mixed MLE training (its Algorithm 2), as computed here:

- pick ``m`` real sequences ``x_i``; keep their first ``N`` tokens and complete each ``n`` times with the generator:
  ``x~_ij = x_i[:N] + G's continuation``, ``[m * n, T]`` with row ``i * n + j`` (:func:`prefix_completions`);
- weights normalised within each group of ``n`` completions of the same prefix, minus a baseline ``b``:
  ``w_ij = r_D(x~_ij) / sum_j' r_D(x~_ij') - b`` (:func:`normalised_weights`). Since ``r_D = exp(l_real - l_gen)``
  for the two-class discriminator, the normalised weight is the softmax over the group of its GAN logit, which
  stays finite where ``D`` rounds to 1 (where ``D / (1 - D)`` would overflow);
- the gradient ascended is ``sum_ij w_ij grad log G(x~_ij[N:] | x_i[:N]) + 1/m sum_i sum_{t<N} grad log G(x_i[t] |
  x_i[:t])``: per-token coefficients ``w_ij`` after the prefix and ``1/(m n)`` on it (the ``n`` copies of a
  prefix share its tokens), :func:`token_coefficients`, fed to the shared REINFORCE loss.

``N`` starts at the sequence length and falls by ``K`` tokens every iteration to 0 (pure MaliGAN from then on);
``N = 0`` for the whole run is the paper's basic MaliGAN on groups of ``n`` free samples.
"""

from __future__ import annotations

import torch

from ..models.lstm_generator import LSTMGenerator
from ..models.sampling import DEFAULT_SAMPLER


@torch.no_grad()
def prefix_completions(
    generator: LSTMGenerator,
    real: torch.Tensor,
    prefix_len: int,
    n: int,
    *,
    temperature: float = 1.0,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """``n`` completions of the first ``prefix_len`` tokens of each real sequence.

    ``real [m, T]`` -> ``[m * n, T]`` int64 on the generator's device: row ``i * n + j`` is ``real[i, :N]``
    followed by the generator's ``j``-th continuation (``N >= T``: the sequences themselves, repeated). Rows of a
    variable-length model whose prefix already holds EOS continue with PAD.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if real.dim() != 2:
        raise ValueError(f"expected real sequences [m, T], got shape {tuple(real.shape)}")
    real = real.to(generator.device, torch.long)
    m, t_len = real.shape
    rows = real.repeat_interleave(n, dim=0)  # [m, T] -> [m*n, T], row i*n + j
    if prefix_len >= t_len:
        return rows
    done = None
    if prefix_len == 0:
        state = generator.initial_state(m * n)
    else:
        h_pre, c_pre = generator.prefix_states(real)  # each [m, T, H]; index N: the state after x[:, :N]
        state = (h_pre[:, prefix_len].repeat_interleave(n, dim=0),  # [m, H] -> [m*n, H]
                 c_pre[:, prefix_len].repeat_interleave(n, dim=0))
        if generator.variable_length:
            done = generator.eos_seen(rows)[:, prefix_len - 1]  # [m*n]: the prefix has ended
    rest = generator.generate(state, t_len - prefix_len, temperature, rng, method, done)  # [m*n, T - N]
    return torch.cat([rows[:, :prefix_len], rest], dim=1)  # [m*n, T]


def normalised_weights(log_odds: torch.Tensor, n: int, baseline: bool = True) -> torch.Tensor:
    """``r / sum_group r - b`` with ``r = exp(log_odds)`` (``D / (1 - D)`` of a two-class discriminator).

    ``log_odds [m * n]`` (row ``i * n + j``; groups of ``n`` consecutive rows) -> ``[m * n]`` float32;
    ``baseline``: ``b = 1 / n``, the mean normalised weight of a group (else ``b = 0``).
    """
    if log_odds.dim() != 1 or log_odds.numel() % n:
        raise ValueError(f"log_odds must be a vector of groups of {n}, got shape {tuple(log_odds.shape)}")
    weights = torch.softmax(log_odds.float().view(-1, n), dim=1)  # [m*n] -> [m, n]: r / sum_j r
    if baseline:
        weights = weights - 1.0 / n
    return weights.reshape(-1)  # [m, n] -> [m*n]


def token_coefficients(weights: torch.Tensor, prefix_len: int, seq_len: int) -> torch.Tensor:
    """Per-token coefficients of ``log G`` in the mixed objective: ``weights [m * n]`` -> ``[m * n, T]`` with
    ``1 / (m n)`` on the prefix positions ``t < N`` and the row's weight after them."""
    rows = weights.shape[0]
    coeff = weights[:, None].expand(rows, seq_len).clone()  # [m*n] -> [m*n, T]
    coeff[:, : min(prefix_len, seq_len)] = 1.0 / rows  # the m*n rows: 1/m per prefix, shared by its n copies
    return coeff


def reference_normalised_weights(prob_real: torch.Tensor, n: int, baseline: bool = True) -> torch.Tensor:
    """The slow, literal computation (tests): ``r = D / (1 - D)`` per row, divided by its group's sum in a loop,
    minus ``1/n``; float64. ``prob_real [m * n]`` -> ``[m * n]``."""
    d = prob_real.double().tolist()
    out = []
    for lo in range(0, len(d), n):
        r = [p / (1.0 - p) for p in d[lo:lo + n]]
        total = sum(r)
        out += [ri / total - (1.0 / n if baseline else 0.0) for ri in r]
    return torch.tensor(out, dtype=torch.float64)
