"""RankGAN's rollout rewards: rank scores of Monte Carlo completions within the generator's batch.

For a generated batch ``seqs [B, T]`` and one reference set of real sentences (drawn once per generator step), the
authors' code (``rollout.py`` / ``ranker.py`` of github.com/cookielee77/RankGan-NIPS2017) scores every completion
of every prefix and ranks it against the other rows of the batch completed the same way::

    Q[b, t-1] = mean_n softmax_b'( score(completion n of seqs[b', :t]) )[b]       t = 1 .. T-1
    Q[b, T-1] = softmax_b'( score(seqs[b']) )[b]

where ``score`` is the ranker's ``gamma * sum_s cos(y_u, y_s)`` without dropout: the comparison set of a
completion is the ``B`` completions of the same rollout ``n`` from the same prefix length. The completions are the
shared batched rollout's (:func:`seqgan_kit.rl.rollout.rollout_completions`); :func:`reference_rank_rewards` is the
literal loop (one prefix length and rollout at a time, cosines and softmax by hand) that the tests compare with.
"""

from __future__ import annotations

import math

import torch

from ..models.lstm_generator import LSTMGenerator
from ..models.ranker import CNNRanker
from ..models.sampling import DEFAULT_SAMPLER
from .rollout import rollout_completions


@torch.no_grad()
def rank_rewards(
    generator: LSTMGenerator,
    ranker: CNNRanker,
    seqs: torch.Tensor,
    references: torch.Tensor,
    num_rollouts: int,
    *,
    temperature: float = 1.0,
    max_batch: int = 65536,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """Rank-score rewards of ``seqs [B, T]`` against ``references [S, T]`` -> ``[B, T]`` float32 (see the module
    docstring); ``max_batch`` bounds the rows sampled and scored at once."""
    comp = rollout_completions(generator, seqs, num_rollouts, temperature=temperature, max_batch=max_batch,
                               rng=rng, method=method)  # [L, N, B, T]
    lengths, n, b, t_len = comp.shape
    final = ranker.rank_scores(seqs.to(comp.device, torch.long), references, batch_size=max_batch)  # [B]
    rewards = final.new_empty(b, t_len)  # [B, T]
    rewards[:, t_len - 1] = torch.softmax(final, dim=0)
    if lengths:
        scores = ranker.rank_scores(comp.view(lengths * n * b, t_len), references, batch_size=max_batch)
        ranked = torch.softmax(scores.view(lengths, n, b), dim=-1)  # [L*N*B] -> [L, N, B], softmax over B
        rewards[:, :lengths] = ranked.mean(dim=1).transpose(0, 1)  # [L, B] -> [B, L]
    return rewards


@torch.no_grad()
def reference_rank_rewards(
    generator: LSTMGenerator,
    ranker: CNNRanker,
    seqs: torch.Tensor,
    references: torch.Tensor,
    num_rollouts: int,
    *,
    temperature: float = 1.0,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """The slow, literal computation (fixed-length sequences): for each rollout and prefix length, feed the prefix
    token by token, sample the rest, embed every sentence on its own, sum its cosines to each reference one pair at
    a time and take the softmax over the batch by hand. Same meaning as :func:`rank_rewards`; float64."""
    seqs = seqs.to(generator.device, torch.long)
    b, t_len = seqs.shape
    was_training = ranker.training
    ranker.eval()
    try:
        ref_feats = [ranker.features(r[None])[0].double() for r in references.to(ranker.device)]  # S x [D]

        def score(row: torch.Tensor) -> float:
            f = ranker.features(row[None])[0].double()  # [D]
            total = sum(float(f @ r) / (float(f.norm()) * float(r.norm())) for r in ref_feats)
            return ranker.gamma * total

        def softmax(values: list[float]) -> list[float]:
            top = max(values)
            exps = [math.exp(v - top) for v in values]
            return [e / sum(exps) for e in exps]

        rewards = torch.zeros(b, t_len, dtype=torch.float64)
        for _ in range(num_rollouts):
            for given in range(1, t_len):
                state = generator.initial_state(b)
                for j in range(given):
                    state = generator.advance(seqs[:, j], state)
                rest = generator.generate(state, t_len - given, temperature, rng, method)  # [B, T - given]
                full = torch.cat([seqs[:, :given], rest], dim=1)  # [B, T]
                ranked = softmax([score(full[i]) for i in range(b)])
                rewards[:, given - 1] += torch.tensor(ranked, dtype=torch.float64)
        rewards[:, : t_len - 1] /= num_rollouts
        rewards[:, t_len - 1] = torch.tensor(softmax([score(seqs[i]) for i in range(b)]), dtype=torch.float64)
    finally:
        ranker.train(was_training)
    return rewards
