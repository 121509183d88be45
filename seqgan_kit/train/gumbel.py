"""Gumbel-softmax GANs (``algorithm = "gumbel"``): GSGAN done right and RelGAN, after the shared MLE stage.

The generator gets its gradient from the discriminator through the Gumbel-softmax relaxation
(:meth:`~seqgan_kit.models.generator.SequenceGenerator.gumbel_rollout`): the discriminator reads the relaxed
one-hots ``softmax(beta * (o_t + g_t))`` while the generator feeds back the hard sample ``argmax(o_t + g_t)``.
No rollouts, one backward pass (Jang et al. 2017; Kusner & Hernandez-Lobato 2016; Nie et al. 2019).

Any generator kind works (``lstm``: GSGAN with the noise on the logits; ``rmc``: RelGAN's relational memory),
with a discriminator that has ``gan_logits`` (``cnn``: the SeqGAN highway CNN, its logit is
``logit_real - logit_generated``; ``relgan``: the multi-representation CNN, ``S`` logits per sequence).

Phase ``adversarial`` (``steps`` steps): each step makes ``g_steps`` generator updates, then ``d_steps``
discriminator updates, each on a fresh random batch of real training sequences and a fresh relaxed sample
(RelGAN: 1 and 5). Adam (lr 1e-4 for both, betas 0.9/0.999), global gradient-norm clip 5 for both. The loss is
``rsgan`` (default), ``standard`` or ``hinge`` (:mod:`seqgan_kit.train.gan_losses`); a ``cnn`` discriminator also
adds its own L2 term (``discriminator.l2_reg``) to its loss. The inverse temperature of step ``i`` (1-based) is
RelGAN's: its temperature variable starts at 1 and is set to ``beta(k)`` only after the updates of its
iteration ``k`` (0-based), so step 1 trains at 1 and step ``i >= 2`` at ``beta(i - 2)`` of the schedule
(:func:`seqgan_kit.models.gumbel.inverse_temperature`; ``const`` too: 1 at step 1, then ``beta_max``).
Metrics: ``g_loss``, ``d_loss`` (the last updates before the evaluation), ``beta`` and the task
metrics, every ``eval_every`` steps. Random draws: real batches from the run's ``gumbel_batches`` stream, the
Gumbel noise and dropout from the global stream, all checkpointed (exact resume).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..config import ConfigError, non_negative, one_of, positive
from ..models.gumbel import RELGAN_HORIZON, SCHEDULES, inverse_temperature
from .divergence import backward_step, finite_loss
from .gan_losses import LOSSES, gan_losses
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

ADVERSARIAL = "adversarial"


@dataclass
class GumbelConfig:
    """The ``[gumbel]`` table (RelGAN's settings by default; its synthetic runs use 3,000 steps)."""

    steps: int = 3000
    g_steps: int = 1
    d_steps: int = 5
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    """Global gradient-norm clip of both networks (0: none)."""
    loss: str = "rsgan"
    beta_max: float = 100.0
    schedule: str = "exp"
    anneal_horizon: int = RELGAN_HORIZON
    """The schedule's ``N``. RelGAN hard-codes 5000 (and stops at 2,000-3,000 steps, so beta stays below
    beta_max); set it to ``steps`` to reach beta_max at the end."""
    eval_every: int = 20
    checkpoint_every: int = 20

    def validate(self) -> None:
        positive(self, "g_steps", "g_lr", "d_lr", "batch_size", "beta_max", "eval_every", "checkpoint_every")
        non_negative(self, "steps", "d_steps", "grad_clip")
        one_of(self, "loss", LOSSES)
        one_of(self, "schedule", SCHEDULES)
        if self.anneal_horizon < 2:
            raise ConfigError("anneal_horizon", f"must be >= 2, got {self.anneal_horizon}")
        if self.steps > self.anneal_horizon:
            raise ConfigError("steps", f"({self.steps}) must not exceed anneal_horizon ({self.anneal_horizon}): "
                                       f"beta would run past beta_max")


@contextmanager
def frozen(module: torch.nn.Module):
    """No parameter gradients for ``module`` inside the block (gradients still flow through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@register_algorithm("gumbel", config=GumbelConfig)
class GumbelTrainer(Trainer):
    """The discriminator, both Adam optimizers and the ``adversarial`` phase of a Gumbel-softmax GAN."""

    requires = {"generator": {"language_model", "gumbel"}, "discriminator": {"gan_logits"}}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: GumbelConfig = exp.cfg.algo
        self.build_adversaries()

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """The discriminator's filters must fit the sequences."""
        check_length = getattr(cfg.discriminator, "check_length", None)
        if check_length is not None:
            check_length(cfg.seq_len, cfg.seq_len_source)

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(ADVERSARIAL, self.adversarial)]

    # ------------------------------------------------------------------ one update of each network
    def beta(self, steps_done: int) -> float:
        s = self.cfg
        return inverse_temperature(s.schedule, s.beta_max, steps_done, s.anneal_horizon)

    def step_beta(self, step: int) -> float:
        """The inverse temperature adversarial step ``step`` (1-based) trains at: 1, then ``beta(step - 2)``."""
        return 1.0 if step <= 1 else self.beta(step - 2)

    def real_batch(self) -> torch.Tensor:
        data = self.exp.task.train
        idx = torch.randperm(len(data), generator=self.exp.rng("gumbel_batches"))[: self.cfg.batch_size]
        return data[idx.to(data.device)]

    def generator_step(self, beta: float, step: int | None = None) -> float:
        """One generator update through the relaxed sample; returns its loss.

        With several ranks each takes its share of the global real batch and relaxes as many samples of its own.
        """
        gen, disc, ranks, where = self.exp.generator, self.disc, self.exp.ranks, f"adversarial step {step}"
        batch = self.real_batch()
        real = ranks.shard(batch)  # [B_r, T]
        gen.train()
        disc.train()
        with ranks.local_random():
            _, soft = self.g_model(lambda g: g.gumbel_rollout(len(real), beta))  # [B_r, T, V], differentiable
            with frozen(disc), ranks.autocast():
                d_loss, g_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), self.cfg.loss)
        g_loss = g_loss * ranks.weight(len(real), len(batch)) if ranks.world > 1 else g_loss
        value = finite_loss(ranks.mean(g_loss), f"{where} (generator)")
        backward_step(self.g_optimizer, g_loss, f"{where} (generator)", self.cfg.grad_clip, gen.parameters())
        return value

    def discriminator_step(self, beta: float, step: int | None = None) -> float:
        """One discriminator update on a fresh real batch and a fresh relaxed sample; returns its loss."""
        gen, disc, ranks, where = self.exp.generator, self.disc, self.exp.ranks, f"adversarial step {step}"
        batch = self.real_batch()
        real = ranks.shard(batch)  # [B_r, T]
        disc.train()
        with ranks.local_random():
            with torch.no_grad(), ranks.autocast():
                _, soft = gen.gumbel_rollout(len(real), beta)
            d_loss = self.d_model(lambda d: gan_losses(d.gan_logits(real), d.gan_logits(soft), self.cfg.loss)[0])
        l2_reg = getattr(disc, "l2_reg", 0.0)
        if l2_reg:
            d_loss = d_loss + l2_reg * disc.l2_penalty()
        if ranks.world > 1:  # its share of the global mean (the same penalty on every rank averages to itself)
            d_loss = d_loss * ranks.weight(len(real), len(batch))
        value = finite_loss(ranks.mean(d_loss), f"{where} (discriminator)")
        backward_step(self.d_optimizer, d_loss, f"{where} (discriminator)", self.cfg.grad_clip, disc.parameters())
        return value

    # ------------------------------------------------------------------ the phase
    def step(self, step: int) -> dict[str, float]:
        """Adversarial step ``step`` (1-based): ``g_steps`` generator then ``d_steps`` discriminator updates;
        returns the latest losses and the inverse temperature."""
        s = self.cfg
        losses = self.exp.state.setdefault("gumbel_losses", {})  # the latest g_loss / d_loss
        beta = self.step_beta(step)
        for _ in range(s.g_steps):
            losses["g_loss"] = self.generator_step(beta, step)
        for _ in range(s.d_steps):
            losses["d_loss"] = self.discriminator_step(beta, step)
        return {**losses, "beta": beta}

    def adversarial(self, start_step: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ADVERSARIAL, start_step, s.steps, self.step, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={"beta": self.step_beta(1)})
        exp.save_weights("generator.safetensors", ["generator"])
