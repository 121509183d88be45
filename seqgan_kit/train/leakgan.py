"""LeakGAN (Guo et al., AAAI 2018), following the authors' code (CR-Gjx/LeakGAN, ``No Temperature/Synthetic Data``).

The generator is :class:`~seqgan_kit.models.leakgan_generator.LeakGANGenerator` (Manager and Worker steered by
the discriminator's leaked CNN feature); the discriminator is the highway CNN (``[discriminator]``), whose
weights are copied into the generator's leaked extractor after every discriminator update.

Phases after the shared MLE stage (``pretrain_g``; the LeakGAN recipes set ``mle.epochs = 0``, see below):

- ``pretrain_interleaved``: ``pretrain_blocks`` blocks (official: 10), each ``pretrain_d_rounds`` discriminator
  rounds of ``pretrain_d_epochs`` epochs on fresh negatives (5 x 3), then ``pretrain_g_epochs`` generator
  epochs (8); a generator batch updates the Worker by the token cross-entropy (goals detached) and the Manager
  by the cosine loss ``-cos(f_{(k+1)c} - f_{kc}, G_k)`` (official ``pretrain_goal_loss``; with ``batch_mean``
  its mean is divided once more by ``B T / c``, as the official code divides the scalar the TF loss returns),
  each with its own Adam and its own global-norm clip.
- ``adversarial``: ``iterations`` (official: 800); each makes ``g_steps`` updates on a fresh batch of samples:
  the Manager by ``-R_k cos(f_{(k+1)c} - f_{kc}, G_k)`` with ``R`` the rescaled rollout rewards
  (:mod:`seqgan_kit.rl.leakgan_rewards`), the Worker by ``-r^I_t log G(y_t | y_<t)`` with the intrinsic reward
  ``r^I_t = cos(f_{t+1} - f_{c floor(t/c)}, G_t)``; every ``mle_every`` iterations one interleaved generator
  MLE epoch (the synthetic code has none: 0; the COCO code, 15); then ``d_steps`` discriminator rounds of
  ``d_epochs`` epochs.

``cosine_reduction``: the official code computes both cosines with ``tf.losses.cosine_distance``, whose default
reduction returns ONE number, the mean cosine over the batch and positions; so there the rewards multiply a batch
mean (``batch_mean``, the default: the authors' code as it runs). ``elementwise`` weighs each segment's cosine by
its own reward and each token's log-likelihood by its own intrinsic reward, as the paper writes it.

Why the shared MLE stage has 0 epochs in the LeakGAN recipes: the official code pretrains the generator only
interleaved with the discriminator (the Manager's input is the discriminator's feature); an MLE stage first
would train it against an untrained CNN's feature. With ``mle.epochs > 0`` the shared stage trains every
generator weight by the token cross-entropy first (the Manager through the goals), then the phases above run.

One process only (``distributed=False``: ``--nproc`` and torchrun are refused before any work): nothing of
LeakGAN is split over ranks yet.

Metrics logged: ``nll_oracle``, ``nll_test`` (the task's), ``g_loss`` (Worker cross-entropy, pretraining),
``goal_loss`` (Manager), ``worker_loss``, ``mean_reward`` (the raw discriminator reward before rescaling),
``intrinsic_reward`` (mean ``r^I``), ``d_loss``, ``d_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..config import ConfigError, non_negative, one_of, positive
from ..models.leakgan_generator import NORM_EPS, LeakGANGenerator, TeacherForced
from ..rl.leakgan_rewards import rescaled_activation, segment_rollout_rewards
from .divergence import clip_gradients, finite_loss, optimizer_step, sampling_stops_divergence
from .registry import PhaseFn, register_algorithm
from .seqgan import round_data, train_discriminator
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

PRETRAIN = "pretrain_interleaved"
ADVERSARIAL = "adversarial"
REDUCTIONS = ("batch_mean", "elementwise")


@dataclass
class LeakGANConfig:
    """The ``[leakgan]`` table (defaults: the official synthetic code, ``No Temperature``, length 20)."""

    pretrain_blocks: int = 10
    pretrain_d_rounds: int = 5
    pretrain_d_epochs: int = 3
    pretrain_g_epochs: int = 8
    iterations: int = 800
    g_steps: int = 1
    d_steps: int = 5
    d_epochs: int = 3
    num_rollouts: int = 4
    g_lr: float = 0.01
    """Adam learning rate of the Manager and the Worker, pretraining and adversarial (official LEARNING_RATE)."""
    g_batch_size: int = 64
    grad_clip: float = 5.0
    """Global-norm clip of the Manager's and of the Worker's gradients, each group on its own."""
    d_lr: float = 5e-5
    """The discriminator's Adam learning rate (official 5e-5)."""
    d_batch_size: int = 64
    n_negative: int = 9984
    """Generated negatives per discriminator round (official: 10,000 requested, 156 batches of 64 written)."""
    delta: float = 16.0
    """Sharpness of the rank rescaling ``sigma(delta (rank / B - 0.5))`` (official 16)."""
    cosine_reduction: str = "batch_mean"
    """``batch_mean`` (the official code's effective loss) or ``elementwise`` (the paper's); module docstring."""
    mle_every: int = 0
    """Interleaved MLE: one generator pretraining epoch every this many adversarial iterations (0: none)."""
    eval_every: int = 5
    checkpoint_every: int = 5

    def validate(self) -> None:
        positive(self, "g_steps", "num_rollouts", "g_lr", "g_batch_size", "d_lr", "d_batch_size", "n_negative",
                 "delta", "eval_every", "checkpoint_every")
        non_negative(self, "pretrain_blocks", "pretrain_d_rounds", "pretrain_d_epochs", "pretrain_g_epochs",
                     "iterations", "d_steps", "d_epochs", "grad_clip", "mle_every")
        one_of(self, "cosine_reduction", REDUCTIONS)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of ``[..., D]`` pairs -> ``[...]`` (the official normalise-then-dot, TensorFlow's floor on the norm)."""
    return (F.normalize(a, dim=-1, eps=NORM_EPS) * F.normalize(b, dim=-1, eps=NORM_EPS)).sum(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` (same shape, bool) holds; 0 for an empty mask."""
    keep = mask.to(values.dtype)
    return (values.masked_fill(~mask, 0.0) * keep).sum() / keep.sum().clamp(min=1)


def goal_cosines(out: TeacherForced, step_size: int) -> torch.Tensor:
    """``cos(f_{(k+1)c} - f_{kc}, G_k)`` per segment: -> ``[B, n]`` (gradient into the Manager only)."""
    f = out.features[:, ::step_size]  # [B, n+1, D]: f_0, f_c, .., f_T
    return cosine(f[:, 1:] - f[:, :-1], out.segment_goals)


def intrinsic_rewards(out: TeacherForced, step_size: int) -> torch.Tensor:
    """The Worker's intrinsic reward ``cos(f_{t+1} - f_{c floor(t/c)}, G_t)`` per token: -> ``[B, T]``, detached
    (the official reward depends only on the Manager and the discriminator)."""
    t = out.goals.shape[1]
    starts = torch.arange(t, device=out.features.device) // step_size * step_size  # [T]
    change = out.features[:, 1:] - out.features[:, starts]  # [B, T, D]
    return cosine(change, out.goals).detach()


def adversarial_losses(rewards: torch.Tensor, cos_goal: torch.Tensor, intrinsic: torch.Tensor, logp: torch.Tensor,
                       segments: torch.Tensor, tokens: torch.Tensor, reduction: str) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """The Manager's and the Worker's adversarial losses.

    ``rewards``, ``cos_goal`` and ``segments`` (the segments that count) are ``[B, n]``; ``intrinsic``, ``logp``
    (``log G(y_t | y_<t)``) and ``tokens`` ``[B, T]``. ``batch_mean``: ``-mean(R) mean(cos)`` and
    ``-mean(r^I) mean(log G)`` (the official code's ``tf.losses.cosine_distance`` reduces the cosines to one
    number); ``elementwise``: ``-mean(R cos)`` and ``-mean(r^I log G)`` (the paper). Returns two scalars."""
    if reduction == "batch_mean":
        return (-masked_mean(rewards, segments) * masked_mean(cos_goal, segments),
                -masked_mean(intrinsic, tokens) * masked_mean(logp, tokens))
    return -masked_mean(rewards * cos_goal, segments), -masked_mean(intrinsic * logp, tokens)


@register_algorithm("leakgan", config=LeakGANConfig, distributed=False)
class LeakGANTrainer(Trainer):
    """The discriminator, the four generator optimizers and the two LeakGAN phases of one run."""

    requires = {"generator": {"language_model", "leaked_features"}, "discriminator": {"prob_real", "features"}}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: LeakGANConfig = exp.cfg.algo
        gen: LeakGANGenerator = exp.generator
        self.disc = exp.build_discriminator()
        gen.sync_features(self.disc)  # before the shared MLE stage: the Manager reads this discriminator's feature
        s = self.cfg
        self.d_optimizer = exp.adam("discriminator", self.disc.parameters(), s.d_lr)
        self.pre_worker = exp.adam("leakgan_worker_pretrain", gen.worker_parameters(), s.g_lr)
        self.pre_manager = exp.adam("leakgan_manager_pretrain", gen.manager_parameters(), s.g_lr)
        self.adv_worker = exp.adam("leakgan_worker_adv", gen.worker_parameters(), s.g_lr)
        self.adv_manager = exp.adam("leakgan_manager_adv", gen.manager_parameters(), s.g_lr)

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """The generator's leaked extractor must be the discriminator's architecture; segments must fit."""
        gen, disc = cfg.generator, cfg.discriminator
        disc.check_length(cfg.seq_len, cfg.seq_len_source)  # the generator's: when the recipe is read
        for own, theirs in (("feature_emb_dim", "emb_dim"), ("filter_sizes", "filter_sizes"),
                            ("num_filters", "num_filters")):
            if getattr(gen, own) != getattr(disc, theirs):
                raise ConfigError(f"generator.{own}", f"{getattr(gen, own)} must equal discriminator.{theirs} "
                                                      f"({getattr(disc, theirs)}): algorithm = 'leakgan' leaks "
                                                      f"that discriminator's feature to the generator")

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(PRETRAIN, self.pretrain), (ADVERSARIAL, self.adversarial)]

    # ------------------------------------------------------------------ discriminator
    def d_round(self, epochs: int, where: str) -> tuple[float, float]:
        """One discriminator round on fresh negatives (balanced positives as in SeqGAN's), then the feature leak."""
        s, exp, gen = self.cfg, self.exp, self.exp.generator
        positives, negatives = round_data(gen, exp.task.train, s.n_negative, exp.cfg.eval.batch_size, where)
        result = train_discriminator(self.disc, self.d_optimizer, positives, negatives, epochs, s.d_batch_size,
                                     where=where, ranks=exp.ranks)
        gen.sync_features(self.disc)
        return result

    # ------------------------------------------------------------------ generator updates
    def _step(self, worker_loss: torch.Tensor, manager_loss: torch.Tensor, worker_opt: torch.optim.Optimizer,
              manager_opt: torch.optim.Optimizer, where: str) -> tuple[float, float]:
        """One update of each group from its own loss (the two losses reach disjoint parameters), each clipped on
        its own; a non-finite loss stops training before any weight changes."""
        gen: LeakGANGenerator = self.exp.generator
        w, m = finite_loss(worker_loss.detach(), where), finite_loss(manager_loss.detach(), where)
        worker_opt.zero_grad(set_to_none=True)
        manager_opt.zero_grad(set_to_none=True)
        (worker_loss + manager_loss).backward()
        clip_gradients(gen.worker_parameters(), self.cfg.grad_clip)
        clip_gradients(gen.manager_parameters(), self.cfg.grad_clip)
        optimizer_step(worker_opt, where)
        optimizer_step(manager_opt, where)
        return w, m

    def pretrain_batch(self, batch: torch.Tensor, where: str) -> tuple[float, float]:
        """Worker cross-entropy and Manager cosine loss on a batch of real sequences ``[B, T]``; one update each."""
        gen: LeakGANGenerator = self.exp.generator
        out = gen.teacher_forced(batch, detach_goals=True)
        ignore = gen.pad_token if gen.variable_length else -100  # text: padding after EOS is no target
        worker_loss = F.cross_entropy(out.logits.reshape(-1, gen.vocab_size), batch.reshape(-1),
                                      ignore_index=ignore)  # [B*T, V] against [B*T]
        cos = goal_cosines(out, gen.step_size)  # [B, n]
        segments = gen.token_mask(batch)[:, :: gen.step_size]  # [B, n]: segments that start inside the text
        manager_loss = -masked_mean(cos, segments)
        if self.cfg.cosine_reduction == "batch_mean":  # the official loss divides its scalar again by B * T / c
            manager_loss = manager_loss / cos.numel()
        return self._step(worker_loss, manager_loss, self.pre_worker, self.pre_manager, where)

    def pretrain_epoch(self, where: str) -> tuple[float, float]:
        """One pass over the training data in a fresh order (the run's data stream); mean losses."""
        exp, s, gen = self.exp, self.cfg, self.exp.generator
        data = exp.task.train
        gen.train()
        order = torch.randperm(len(data), generator=exp.rng("data")).to(data.device)
        sums, batches = [0.0, 0.0], 0
        for lo in range(0, len(data), s.g_batch_size):
            w, m = self.pretrain_batch(data[order[lo: lo + s.g_batch_size]], where)
            sums[0] += w
            sums[1] += m
            batches += 1
        return sums[0] / max(batches, 1), sums[1] / max(batches, 1)

    def pretrain_block(self, block: int) -> dict[str, float]:
        """One block of the interleaved pretraining: discriminator rounds, then generator epochs."""
        s = self.cfg
        metrics: dict[str, float] = {}
        for r in range(s.pretrain_d_rounds):
            d_loss, d_acc = self.d_round(s.pretrain_d_epochs, f"pretraining block {block}, discriminator round {r + 1}")
            metrics.update(d_loss=d_loss, d_accuracy=d_acc)
        for e in range(s.pretrain_g_epochs):
            g_loss, goal_loss = self.pretrain_epoch(f"pretraining block {block}, generator epoch {e + 1}")
            metrics.update(g_loss=g_loss, goal_loss=goal_loss)
        return metrics

    def pretrain(self, start_block: int) -> None:
        s, exp = self.cfg, self.exp
        exp.generator.sync_features(self.disc)  # a no-op but after [init] brought another discriminator
        blocks = 0 if exp.cfg.init.generator and exp.cfg.init.discriminator else s.pretrain_blocks
        # one unit ("step") is a block; no record at 0: the shared stage's last record is this generator's
        run_units(exp, PRETRAIN, start_block, blocks, self.pretrain_block, eval_every=1, checkpoint_every=1)

    def generator_step(self, iteration: int) -> dict[str, float]:
        """One adversarial update of the Manager and the Worker on a fresh batch of samples."""
        s, gen = self.cfg, self.exp.generator
        where = f"iteration {iteration}"
        gen.eval()
        with sampling_stops_divergence(where):
            samples = gen.sample(s.g_batch_size)  # [B, T]
            raw = segment_rollout_rewards(gen, self.disc.prob_real, samples, s.num_rollouts)  # [B, n]
        rewards = rescaled_activation(raw, s.delta) / s.num_rollouts  # the official division by the rollouts
        gen.train()
        out = gen.teacher_forced(samples, detach_goals=True)
        cos_goal = goal_cosines(out, gen.step_size)  # [B, n]
        intrinsic = intrinsic_rewards(out, gen.step_size)  # [B, T]
        logp = torch.log_softmax(out.logits, dim=-1).gather(-1, samples.unsqueeze(-1)).squeeze(-1)  # [B, T]
        tokens = gen.token_mask(samples)  # [B, T]: all, or up to EOS (text)
        segments = tokens[:, :: gen.step_size]  # [B, n]
        manager_loss, worker_loss = adversarial_losses(rewards, cos_goal, intrinsic, logp, segments, tokens,
                                                       s.cosine_reduction)
        w, m = self._step(worker_loss, manager_loss, self.adv_worker, self.adv_manager, where)
        return {"goal_loss": m, "worker_loss": w, "mean_reward": float(masked_mean(raw, segments)),
                "intrinsic_reward": float(masked_mean(intrinsic, tokens))}

    def iteration(self, it: int) -> dict[str, float]:
        """One adversarial iteration: generator steps, the interleaved MLE epoch when due, discriminator rounds.

        Returns the generator's statistics with the discriminator statistics of the rounds before this
        iteration's (those the generator trained against)."""
        s, exp = self.cfg, self.exp
        d_stats = exp.state.setdefault("d_stats", {})
        steps = [self.generator_step(it) for _ in range(s.g_steps)]
        metrics = {k: sum(r[k] for r in steps) / len(steps) for k in steps[0]}
        metrics.update(d_stats)
        if s.mle_every and it % s.mle_every == 0:
            g_loss, _ = self.pretrain_epoch(f"iteration {it}, interleaved MLE")
            metrics["g_loss"] = g_loss
        for _ in range(s.d_steps):
            d_loss, d_acc = self.d_round(s.d_epochs, f"iteration {it}")
            d_stats.update(d_loss=d_loss, d_accuracy=d_acc)
        return metrics

    def adversarial(self, start_iteration: int) -> None:
        s, exp = self.cfg, self.exp
        exp.generator.sync_features(self.disc)
        # no record at 0: the last pretraining block's record is this generator's (an evaluation costs minutes)
        run_units(exp, ADVERSARIAL, start_iteration, s.iterations, self.iteration, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every)
        exp.save_weights("generator.safetensors", ["generator"])
