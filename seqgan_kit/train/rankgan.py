"""RankGAN (Lin et al., NIPS 2017): policy gradient against a ranker instead of a classifier.

Phases after the shared MLE pretraining (``pretrain_g``), as the authors' code (cookielee77/RankGan-NIPS2017,
``main.py``) runs them:

- ``pretrain_d``: ``d_pretrain_rounds`` rounds (authors: 50); each samples ``n_negative`` fresh negatives and trains
  the ranker ``d_pretrain_epochs`` epochs (authors: 3) on them and the real data, in shuffled batches of
  ``d_batch_size`` mixed rows; every batch is one comparison set and draws its own ``ref_size`` references from the
  real data (:meth:`~seqgan_kit.models.ranker.CNNRanker.loss`).
- ``adversarial``: ``iterations`` iterations (authors: 200); each makes ``g_steps`` policy-gradient updates on a
  fresh batch of ``g_batch_size`` samples (authors: 1 of 32) with the rank-score rewards of ``num_rollouts``
  Monte Carlo rollouts (:mod:`seqgan_kit.rl.rank_reward`; one reference set per update), then ``d_steps`` ranker
  rounds of ``d_epochs`` epochs (authors: 5 x 1).

The rollout uses the current generator: the authors' 0.8 "delayed" rollout network is inert for the same reason as
SeqGAN's (:mod:`seqgan_kit.rl.rollout`). Metrics: ``g_loss_per_token`` (the summed policy-gradient loss over the
tokens), ``top_reward_ratio`` (the largest final-position reward times the batch size: 1 when the ranker cannot
tell the samples apart), ``d_loss`` (the ranking loss of the last ranker epoch) and ``d_auc`` (the fraction of
(real, generated) pairs of a training batch the ranker orders correctly, ties half). It runs in one process
(``distributed = False``): every comparison set is a whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..config import ConfigError, non_negative, positive
from ..models.ranker import CNNRanker
from ..rl.policy_gradient import policy_gradient_loss
from ..rl.rank_reward import rank_rewards
from .divergence import backward_step, finite_loss, sampling_stops_divergence
from .registry import register_algorithm
from .seqgan import ADVERSARIAL, SeqGANTrainer
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from ..distributed import Wrapped
    from .experiment import Experiment


@dataclass
class RankGANConfig:
    """The ``[rankgan]`` table (the authors' settings by default)."""

    d_pretrain_rounds: int = 50
    d_pretrain_epochs: int = 3
    iterations: int = 200
    g_steps: int = 1
    d_steps: int = 5
    d_epochs: int = 1
    num_rollouts: int = 16
    g_lr: float = 0.01
    g_batch_size: int = 32
    """Generated sentences per policy-gradient step: the comparison set of their rewards."""
    d_lr: float = 1e-4
    d_batch_size: int = 64
    """Rows per ranker batch (real and generated mixed): the comparison set of the ranking loss."""
    ref_size: int = 16
    """Real sentences in each reference set."""
    grad_clip: float = 5.0
    rollout_max_batch: int = 65536
    """Bound on rows sampled and scored at once in the batched rollout (memory knob)."""
    n_negative: int = 9984
    """Generated negatives per ranker round; a larger training set gives as many random positives."""
    eval_every: int = 5
    checkpoint_every: int = 5

    def validate(self) -> None:
        positive(self, "g_steps", "num_rollouts", "g_lr", "d_lr", "ref_size", "rollout_max_batch", "n_negative",
                 "eval_every", "checkpoint_every")
        non_negative(self, "iterations", "d_pretrain_rounds", "d_pretrain_epochs", "d_steps", "d_epochs", "grad_clip")
        for name in ("g_batch_size", "d_batch_size"):
            if getattr(self, name) < 2:
                raise ConfigError(name, f"must be >= 2 (it is the comparison set of a softmax), got "
                                        f"{getattr(self, name)}")


def pair_auc(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """Correctly ordered (real above generated) pairs of one batch, ties half: ``scores [B]``, ``labels [B]`` ->
    (count, pairs)."""
    real, fake = scores[labels == 1], scores[labels == 0]
    diff = real[:, None] - fake[None, :]  # [P, Q]
    return float((diff > 0).sum() + 0.5 * (diff == 0).sum()), diff.numel()


def train_ranker(
    ranker: CNNRanker,
    optimizer: torch.optim.Optimizer,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    references: torch.Tensor,
    epochs: int,
    batch_size: int,
    ref_size: int,
    where: str = "a ranker round",
    model: Wrapped | None = None,
) -> tuple[float, float]:
    """``epochs`` passes over real ``[P, T]`` (label 1) and generated ``[Q, T]`` (label 0) sentences in shuffled
    batches of ``batch_size``; each batch ranks against ``ref_size`` sentences drawn from ``references [R, T]``.

    Returns the mean loss and pair AUC of the last epoch (training batches, dropout on). A non-finite batch loss
    stops training (UserError naming ``where``) before the optimizer step."""
    ranker.train()
    data = torch.cat([positives, negatives])  # [P+Q, T]
    labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).long().to(data.device)
    loss_sum = ordered = pairs = seen = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(data)).to(data.device)
        loss_sum, ordered, pairs, seen = 0.0, 0.0, 0, 0
        for lo in range(0, len(data), batch_size):
            idx = order[lo : lo + batch_size]
            x, y = data[idx], labels[idx]
            refs = references[torch.randint(len(references), (ref_size,)).to(references.device)]  # [S, T]

            def batch_loss(r: CNNRanker, x=x, y=y, refs=refs) -> tuple[torch.Tensor, torch.Tensor]:
                scores = r.relevance(x, refs)  # [b]
                return r.loss_from_scores(scores, y), scores

            loss, scores = batch_loss(ranker) if model is None else model(batch_loss)
            value = finite_loss(loss.detach(), f"{where} (ranker)")
            backward_step(optimizer, loss, f"{where} (ranker)")
            good, total = pair_auc(scores.detach().float(), y)
            loss_sum += value * len(idx)
            ordered += good
            pairs += total
            seen += len(idx)
    return loss_sum / max(seen, 1), ordered / max(pairs, 1)


@register_algorithm("rankgan", config=RankGANConfig, distributed=False)
class RankGANTrainer(SeqGANTrainer):
    """The ranker and the two RankGAN phases of one run."""

    requires = {"generator": {"language_model", "prefix_states"}, "discriminator": {"rank_score"}}

    def __init__(self, exp: Experiment) -> None:
        Trainer.__init__(self, exp)  # not SeqGAN's: no rollout policy
        self.cfg: RankGANConfig = exp.cfg.algo
        self.build_adversaries()


    def references(self, k: int) -> torch.Tensor:
        """``k`` real sentences drawn with replacement from the training data: ``[k, T]``."""
        train = self.exp.task.train
        return train[torch.randint(len(train), (k,)).to(train.device)]

    d_stat_names = ("d_loss", "d_auc")

    def _d_round(self, epochs: int, where: str = "a ranker round") -> tuple[float, float]:
        s, exp = self.cfg, self.exp
        positives, negatives = self._round_data(where)
        return train_ranker(self.disc, self.d_optimizer, positives, negatives, exp.task.train, epochs,
                            s.d_batch_size, s.ref_size, where=where, model=self.d_model)

    def pretrain_round(self, r: int) -> dict[str, float]:
        """One ranker pretraining round on fresh negatives."""
        d_loss, d_auc = self._d_round(self.cfg.d_pretrain_epochs, where=f"ranker pretraining round {r}")
        return {"d_loss": d_loss, "d_auc": d_auc}

    def generator_step(self, iteration: int | None = None) -> tuple[float, float]:
        """One policy-gradient update on a fresh batch; returns (loss per token, the final position's largest
        reward times the batch size: 1 when the ranker cannot tell the samples apart)."""
        s, exp, gen = self.cfg, self.exp, self.exp.generator
        where = f"iteration {iteration}" if iteration is not None else "a generator step"
        gen.eval()
        with sampling_stops_divergence(where):
            samples = gen.sample(s.g_batch_size)  # [B, T]
            refs = self.references(s.ref_size)  # [S, T]
            with exp.ranks.autocast():
                rewards = rank_rewards(gen, self.disc, samples, refs, s.num_rollouts,
                                       max_batch=s.rollout_max_batch).float()  # [B, T]
        gen.train()
        mask = gen.token_mask(samples)  # [B, T]
        loss = self.g_model(lambda g: policy_gradient_loss(g.log_probs(samples), rewards, mask=mask))
        value = finite_loss(loss.detach(), where)
        backward_step(self.g_optimizer, loss, where, s.grad_clip, gen.parameters())
        return value / max(float(mask.sum()), 1.0), float(rewards[:, -1].max()) * s.g_batch_size

    def iteration(self, it: int) -> dict[str, float]:
        """One adversarial iteration: ``g_steps`` policy-gradient updates, then ``d_steps`` ranker rounds (the
        returned ranker statistics are those of the rounds before this iteration's)."""
        results = [self.generator_step(it) for _ in range(self.cfg.g_steps)]
        return {"g_loss_per_token": sum(r[0] for r in results) / len(results),
                "top_reward_ratio": sum(r[1] for r in results) / len(results), **self._d_rounds(it)}

    def adversarial(self, start_iteration: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ADVERSARIAL, start_iteration, s.iterations, self.iteration, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights("generator.safetensors", ["generator"])
