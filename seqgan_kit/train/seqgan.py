"""SeqGAN (Yu et al., 2017): policy-gradient training of the generator against a CNN discriminator.

Phases after the shared MLE pretraining (``pretrain_g``):

- ``pretrain_d``: ``d_pretrain_rounds`` rounds; each samples ``n_negative`` fresh negatives from the generator
  and trains the discriminator ``d_pretrain_epochs`` epochs on them plus the real data (paper: 50 x 3).
- ``adversarial``: ``iterations`` iterations (paper: 200); each makes ``g_steps`` generator updates with the
  policy gradient ``-sum_{b,t} log G(y_t | y_<t) Q_t`` (Q from batched Monte Carlo rollouts scored by D),
  then ``d_steps`` rounds of ``d_epochs`` discriminator epochs on fresh negatives (paper: 1, 5, 3).

Metrics logged: ``nll_oracle``, ``nll_test``, ``d_loss``, ``d_accuracy``, ``mean_reward``, ``g_loss_per_token``
(the policy-gradient loss, a sum over the batch's tokens as in the reference, divided by their number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..config import in_range, non_negative, positive
from ..distributed import Ranks, Wrapped
from ..models.discriminator import CNNDiscriminator
from ..models.generator import SequenceGenerator
from ..rl.policy_gradient import policy_gradient_loss
from ..rl.rollout import RolloutPolicy, rollout_rewards
from .divergence import backward_step, finite_loss, sampling_stops_divergence
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

PRETRAIN_D = "pretrain_d"
ADVERSARIAL = "adversarial"


@dataclass
class SeqGANConfig:
    """The ``[seqgan]`` table (paper: 50 x 3 D pretraining, then 200 iterations of 1 g-step, 5 x 3 d)."""

    d_pretrain_rounds: int = 50
    d_pretrain_epochs: int = 3
    iterations: int = 200
    g_steps: int = 1
    d_steps: int = 5
    d_epochs: int = 3
    num_rollouts: int = 16
    """Monte Carlo rollouts per generated prefix (Q is their mean reward)."""
    g_lr: float = 0.01
    g_batch_size: int = 64
    d_lr: float = 1e-4
    """The discriminator's Adam learning rate (the reference's)."""
    d_batch_size: int = 64
    """Rows per discriminator batch."""
    grad_clip: float = 5.0
    baseline: bool = False
    """Subtract the batch mean reward (off in the paper)."""
    rollout_ema: float = 0.0
    """0: roll out with the current generator (the paper). >0: an EMA copy with this decay."""
    rollout_max_batch: int = 65536
    """Bound on rows sampled at once in the batched rollout (memory knob)."""
    n_negative: int = 9984
    """Generated negatives per discriminator round. When the training set is larger, each round also draws
    this many random positives from it (balanced classes); otherwise every training sequence is a positive."""
    eval_every: int = 5
    checkpoint_every: int = 5

    def validate(self) -> None:
        positive(self, "g_steps", "num_rollouts", "g_lr", "g_batch_size", "d_lr", "d_batch_size", "rollout_max_batch",
                 "n_negative", "eval_every", "checkpoint_every")
        non_negative(self, "iterations", "d_pretrain_rounds", "d_pretrain_epochs", "d_steps", "d_epochs", "grad_clip")
        in_range(self, "rollout_ema", 0, 1, high_open=True)


def round_data(generator: SequenceGenerator, train: torch.Tensor, n_negative: int, batch_size: int,
               where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A discriminator round's ``(positives [P, T], negatives [n_negative, T])``: fresh samples of ``generator``
    (in eval mode, ``batch_size`` rows at a time) and, when ``train [N, T]`` is larger, as many random training
    sequences (balanced classes; drawn from the global torch stream), else all of it."""
    generator.eval()
    with sampling_stops_divergence(where):
        negatives = generator.sample(n_negative, batch_size=batch_size)
    positives = train
    if n_negative < len(positives):
        positives = positives[torch.randperm(len(positives))[:n_negative].to(positives.device)]
    return positives, negatives


def train_discriminator(
    disc: CNNDiscriminator,
    optimizer: torch.optim.Optimizer,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    epochs: int,
    batch_size: int,
    where: str = "a discriminator round",
    ranks: Ranks | None = None,
    model: Wrapped | None = None,
) -> tuple[float, float]:
    """``epochs`` passes over real ``[P, T]`` (label 1) and generated ``[Q, T]`` (label 0) sequences.

    With several ``ranks`` (``model``: the discriminator behind DDP) each global batch is split between them and
    dropout draws from each rank's own stream; every rank holds the same ``positives``/``negatives`` and draws
    the same order. Returns the mean loss and accuracy of the last epoch (training batches, dropout on). A
    non-finite batch loss stops training (UserError naming ``where``) before the optimizer step.
    """
    ranks = ranks or Ranks(device=positives.device)
    model = model or ranks.wrap(disc)
    disc.train()
    data = torch.cat([positives, negatives])  # [P+Q, T]
    labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).long().to(data.device)
    loss_sum = correct = seen = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(data)).to(data.device)
        loss_sum, correct, seen = 0.0, 0.0, 0
        for lo in range(0, len(data), batch_size):
            idx = order[lo : lo + batch_size]
            if len(idx) < ranks.world:  # a last batch too small to split is left out (several ranks only)
                continue
            x, y = ranks.shard(data[idx]), ranks.shard(labels[idx])
            with ranks.local_random():
                logits = model(lambda d, rows=x: d(rows))  # [b, 2]
            loss = disc.loss_from_logits(logits, y)
            hits = (logits.argmax(-1) == y).sum()
            if ranks.world > 1:  # this rank's share of the global batch mean
                loss = loss * ranks.weight(len(x), len(idx))
            value, hits = ranks.sums(loss.detach() / ranks.world, hits)
            finite_loss(value, f"{where} (discriminator)")
            backward_step(optimizer, loss, f"{where} (discriminator)")
            loss_sum += value * len(idx)
            correct += hits
            seen += len(idx)
    return loss_sum / max(seen, 1), correct / max(seen, 1)


@register_algorithm("seqgan", config=SeqGANConfig)
class SeqGANTrainer(Trainer):
    """The discriminator, the rollout policy and the two SeqGAN phases of one run."""

    requires = {"generator": {"language_model", "prefix_states"}, "discriminator": {"prob_real"}}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: SeqGANConfig = exp.cfg.algo
        self.build_adversaries()
        gen = exp.generator
        self.rollout_policy = RolloutPolicy(gen, self.cfg.rollout_ema)
        if self.rollout_policy.ema is not None:
            exp.modules["rollout_policy"] = self.rollout_policy.ema  # checkpointed with the other modules

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """The discriminator's filters must fit the sequences."""
        check_length = getattr(cfg.discriminator, "check_length", None)
        if check_length is not None:
            check_length(cfg.seq_len, cfg.seq_len_source)

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(PRETRAIN_D, self.pretrain_discriminator), (ADVERSARIAL, self.adversarial)]

    # ------------------------------------------------------------------ discriminator
    d_stat_names = ("d_loss", "d_accuracy")
    """What the two numbers a discriminator round returns are logged as."""

    def _round_data(self, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """This run's :func:`round_data`."""
        exp = self.exp
        return round_data(exp.generator, exp.task.train, self.cfg.n_negative, exp.cfg.eval.batch_size, where)

    def _d_round(self, epochs: int, where: str = "a discriminator round") -> tuple[float, float]:
        s, exp = self.cfg, self.exp
        positives, negatives = self._round_data(where)
        return train_discriminator(self.disc, self.d_optimizer, positives, negatives, epochs,
                                   s.d_batch_size, where=where, ranks=exp.ranks, model=self.d_model)

    def pretrain_round(self, r: int) -> dict[str, float]:
        """One discriminator pretraining round on fresh negatives."""
        d_loss, d_acc = self._d_round(self.cfg.d_pretrain_epochs, where=f"discriminator pretraining round {r}")
        return {"d_loss": d_loss, "d_accuracy": d_acc}

    def pretrain_discriminator(self, start_round: int) -> None:
        s, exp = self.cfg, self.exp
        rounds = 0 if exp.cfg.init.discriminator else s.d_pretrain_rounds
        run_units(exp, PRETRAIN_D, start_round, rounds, self.pretrain_round, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, evaluate=False)

    # ------------------------------------------------------------------ generator
    def generator_step(self, iteration: int | None = None) -> tuple[float, float]:
        """One policy-gradient update on a fresh batch; returns (loss per token, mean reward).

        With several ranks every rank draws the same batch from the shared stream and rolls out only its own
        shard of it (its own random stream); the summed loss and DDP's gradient average give the
        one-process update. A non-finite loss stops training (UserError naming ``iteration``) before the
        optimizer step.
        """
        s, gen, ranks = self.cfg, self.exp.generator, self.exp.ranks
        gen.eval()
        samples = ranks.shard(gen.sample(s.g_batch_size))  # [B_r, T]: this rank's rows of the global batch
        with ranks.local_random(), ranks.autocast():
            rewards = rollout_rewards(self.rollout_policy.module, self.disc.prob_real, samples, s.num_rollouts,
                                      max_batch=s.rollout_max_batch).float()
        gen.train()
        mask = gen.token_mask(samples)  # [B_r, T]: padding after EOS counts neither in the loss nor the mean reward
        reward_sum, count = (rewards * mask).sum(), mask.sum()
        baseline = s.baseline
        if baseline and ranks.world > 1:  # the per-position mean over the global batch, subtracted here
            weight = mask.to(rewards.dtype)
            sums = ranks.sum_tensor(torch.stack([(rewards * weight).sum(0), weight.sum(0)]))  # [2, T]
            rewards, baseline = rewards - sums[0] / sums[1].clamp(min=1), False
        loss = self.g_model(lambda g: policy_gradient_loss(g.log_probs(samples), rewards, mask=mask,
                                                           baseline=baseline))
        where = f"iteration {iteration}" if iteration is not None else "a generator step"
        value, reward_sum, count = ranks.sums(loss.detach(), reward_sum, count)
        finite_loss(value, where)
        if ranks.world > 1:
            loss = loss * ranks.world  # a summed loss: DDP's average over the ranks gives back the global sum
        backward_step(self.g_optimizer, loss, where, s.grad_clip, gen.parameters())
        return value / max(count, 1), reward_sum / max(count, 1)

    def _d_rounds(self, it: int) -> dict[str, float]:
        """Iteration ``it``'s ``d_steps`` discriminator rounds of ``d_epochs``. Returns the statistics of the
        latest round *before* them (those the generator of this iteration trained against; empty at first); this
        iteration's are kept in ``exp.state`` (checkpointed) for the next."""
        d_stats = self.exp.state.setdefault("d_stats", {})
        before = dict(d_stats)
        for _ in range(self.cfg.d_steps):
            stats = self._d_round(self.cfg.d_epochs, where=f"iteration {it}")
            d_stats.update(zip(self.d_stat_names, stats, strict=True))
        return before

    def iteration(self, it: int) -> dict[str, float]:
        """One adversarial iteration: ``g_steps`` policy-gradient updates, then ``d_steps`` discriminator rounds.

        Returns the generator's loss and mean reward with the discriminator statistics of the rounds *before*
        this iteration's (:meth:`_d_rounds`); the discriminator does not change what the task metrics of the
        generator measure."""
        results = [self.generator_step(it) for _ in range(self.cfg.g_steps)]
        self.rollout_policy.update()
        return {"g_loss_per_token": sum(r[0] for r in results) / len(results),
                "mean_reward": sum(r[1] for r in results) / len(results), **self._d_rounds(it)}

    def adversarial(self, start_iteration: int) -> None:
        s, exp = self.cfg, self.exp
        if start_iteration == 0 and self.rollout_policy.ema is not None:  # starts from the pretrained generator
            self.rollout_policy.ema.load_state_dict(exp.generator.state_dict())
        run_units(exp, ADVERSARIAL, start_iteration, s.iterations, self.iteration, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights("generator.safetensors", ["generator"])
