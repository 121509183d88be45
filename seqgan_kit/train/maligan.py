"""MaliGAN (Che et al., 2017): the generator trained on discriminator-weighted samples, mixed with MLE on prefixes.

Phases after the shared MLE pretraining (``pretrain_g``), with SeqGAN's CNN discriminator and discriminator rounds
(:class:`~seqgan_kit.train.seqgan.SeqGANTrainer`):

- ``pretrain_d``: ``d_pretrain_rounds`` rounds of ``d_pretrain_epochs`` epochs on ``n_negative`` fresh negatives
  (and as many random real sequences).
- ``adversarial``: ``iterations`` iterations; iteration ``k`` sets the real prefix length
  ``N = max(0, prefix_start - prefix_step * k)`` and makes ``g_steps`` generator updates, each on ``prefixes``
  real sequences completed ``samples_per_prefix`` times from their first ``N`` tokens, weighted by the normalised
  ``D / (1 - D)`` within each group, minus the baseline, plus MLE on the prefixes (:mod:`seqgan_kit.rl.importance`);
  then ``d_steps`` discriminator rounds of ``d_epochs`` epochs.

The MaliGAN objective uses no Monte Carlo rollout (one weight per sequence, as in the paper and Texygen). Metrics:
``g_loss`` (the summed loss of the last generator step), ``prefix_len`` (N), ``mean_prob_real`` (mean D of the
completions), ``effective_samples`` (``1 / sum w^2`` of the normalised weights before the baseline, averaged over
groups: ``n`` when D cannot tell the completions apart, 1 when one takes all the weight), the discriminator's
``d_loss`` / ``d_accuracy`` as in SeqGAN. It runs in one process (``distributed = False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..config import ConfigError, non_negative, positive
from ..rl.importance import normalised_weights, prefix_completions, token_coefficients
from ..rl.policy_gradient import policy_gradient_loss
from .divergence import backward_step, finite_loss, sampling_stops_divergence
from .registry import register_algorithm
from .seqgan import ADVERSARIAL, SeqGANTrainer
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig


@dataclass
class MaliGANConfig:
    """The ``[maligan]`` table. Defaults: the paper's objective on Texygen's oracle schedule (80 discriminator
    pretraining rounds; 100 iterations of 50 generator steps and 15 discriminator rounds on 128 negatives)."""

    d_pretrain_rounds: int = 80
    d_pretrain_epochs: int = 1
    iterations: int = 100
    g_steps: int = 50
    d_steps: int = 15
    d_epochs: int = 1
    g_lr: float = 0.01
    prefixes: int = 16
    """Real sequences per generator step (the paper's m)."""
    samples_per_prefix: int = 4
    """Completions of each real prefix (the paper's n), normalised together."""
    prefix_start: int = -1
    """The real prefix length before the first iteration (-1: the sequence length); 0 is basic MaliGAN."""
    prefix_step: int = 1
    """Tokens the real prefix loses every iteration (the paper's K)."""
    baseline: bool = True
    """Subtract 1/n, the mean normalised weight of a group."""
    grad_clip: float = 5.0
    d_lr: float = 1e-4
    d_batch_size: int = 64
    n_negative: int = 128
    """Generated negatives per discriminator round (and as many random real sequences)."""
    eval_every: int = 5
    checkpoint_every: int = 5

    def validate(self) -> None:
        positive(self, "g_steps", "g_lr", "prefixes", "d_lr", "d_batch_size", "n_negative", "eval_every",
                 "checkpoint_every")
        non_negative(self, "iterations", "d_pretrain_rounds", "d_pretrain_epochs", "d_steps", "d_epochs",
                     "prefix_step", "grad_clip")
        if self.samples_per_prefix < 2:
            raise ConfigError("samples_per_prefix", f"must be >= 2 (weights are normalised within the completions "
                                                    f"of one prefix), got {self.samples_per_prefix}")
        if self.prefix_start < -1:
            raise ConfigError("prefix_start", f"must be -1 (the sequence length) or >= 0, got {self.prefix_start}")


@register_algorithm("maligan", config=MaliGANConfig, distributed=False)
class MaliGANTrainer(SeqGANTrainer):
    """The discriminator and the two MaliGAN phases of one run (discriminator rounds as SeqGAN's)."""

    requires = {"generator": {"language_model", "prefix_states"}, "discriminator": {"prob_real", "gan_logits"}}
    """``prob_real``: SeqGAN's two-class discriminator rounds; ``gan_logits``: ``log D/(1-D)`` for the weights."""

    def __init__(self, exp: Experiment) -> None:
        Trainer.__init__(self, exp)  # not SeqGAN's: no rollout policy
        self.cfg: MaliGANConfig = exp.cfg.algo
        self.build_adversaries()

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """The discriminator's filters must fit the sequences, and so must the starting prefix."""
        SeqGANTrainer.check(cfg)
        if cfg.algo.prefix_start > cfg.seq_len:
            raise ConfigError("maligan.prefix_start", f"{cfg.algo.prefix_start} exceeds the sequence length "
                                                      f"{cfg.seq_len} ({cfg.seq_len_source})")


    def prefix_len(self, iteration: int) -> int:
        """The real prefix length N of ``iteration`` (1-based): the start less ``prefix_step`` per iteration."""
        start = self.exp.task.seq_len if self.cfg.prefix_start < 0 else self.cfg.prefix_start
        return max(0, start - self.cfg.prefix_step * iteration)

    @torch.no_grad()
    def log_odds(self, seqs: torch.Tensor) -> torch.Tensor:
        """``log D/(1-D)`` of ``seqs [M, T]`` without dropout -> ``[M]`` float32 (the previous mode restored)."""
        was_training = self.disc.training
        self.disc.eval()
        try:
            with self.exp.ranks.autocast():
                return self.disc.gan_logits(seqs).float()
        finally:
            self.disc.train(was_training)

    def generator_step(self, iteration: int) -> dict[str, float]:
        """One update of the mixed objective on fresh real prefixes and completions; returns its statistics. A
        non-finite loss stops training (UserError naming ``iteration``) before the optimizer step."""
        s, exp, gen = self.cfg, self.exp, self.exp.generator
        n, prefix = s.samples_per_prefix, self.prefix_len(iteration)
        train = exp.task.train
        real = train[torch.randint(len(train), (s.prefixes,)).to(train.device)]  # [m, T]
        where = f"iteration {iteration}"
        gen.eval()
        with sampling_stops_divergence(where):
            samples = prefix_completions(gen, real, prefix, n)  # [m*n, T]
        log_odds = self.log_odds(samples)  # [m*n]
        weights = normalised_weights(log_odds, n, baseline=s.baseline)  # [m*n]
        coeff = token_coefficients(weights, prefix, samples.shape[1])  # [m*n, T]
        gen.train()
        mask = gen.token_mask(samples)  # [m*n, T]
        loss = self.g_model(lambda g: policy_gradient_loss(g.log_probs(samples), coeff, mask=mask))
        value = finite_loss(loss.detach(), where)
        backward_step(self.g_optimizer, loss, where, s.grad_clip, gen.parameters())
        plain = normalised_weights(log_odds, n, baseline=False).view(-1, n)  # [m*n] -> [m, n]
        return {"g_loss": value, "prefix_len": prefix, "mean_prob_real": torch.sigmoid(log_odds).mean().item(),
                "effective_samples": (1.0 / plain.square().sum(dim=1)).mean().item()}

    def iteration(self, it: int) -> dict[str, float]:
        """One adversarial iteration: ``g_steps`` generator updates, then ``d_steps`` discriminator rounds.

        Returns the last generator step's statistics with the discriminator statistics of the rounds *before*
        this iteration's (those the generator trained against)."""
        metrics = {}
        for _ in range(self.cfg.g_steps):
            metrics = self.generator_step(it)
        return {**metrics, **self._d_rounds(it)}

    def adversarial(self, start_iteration: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ADVERSARIAL, start_iteration, s.iterations, self.iteration, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights("generator.safetensors", ["generator"])
