"""TextGAN (Zhang et al., ICML 2017, "Adversarial Feature Matching for Text Generation"), as Texygen runs it
(``models/textGan_MMD``), after the shared MLE stage (``algorithm = "textgan"``).

The generator is the LSTM started from a latent code: ``h_0 = z``, ``c_0 = 0``
(:meth:`~seqgan_kit.models.lstm_generator.LSTMGenerator.soft_argmax_rollout`). Its tokens are greedy,
``argmax(o_t)``, and its next input is the soft-argmax ``softmax(L o_t) @ E`` (``L = soft_argmax_scale``,
Texygen 1000). The discriminator (``discriminator.kind = "textgan"``) reads sequences through the generator's
embedding ``E`` (looked up for ids, the soft-argmax rows for the generator's relaxed sequences) and gives
features ``f [B, D]``, scores ``s [B, 2]`` and a reconstruction ``z_hat [B, 1]``.

- Generator update: ``L_G = MMD^2(f(soft sample), f(real))`` (:func:`seqgan_kit.train.mmd.mmd2`, Texygen's 19
  Gaussian widths), the discriminator frozen; the gradient reaches every generator parameter, the embedding
  through both feature batches (Texygen shares that one matrix). ``z ~ U(g_z_range)`` (Texygen: U(-0.01, 0.01)).
  Adam ``g_lr`` (Texygen 0.01), global-norm clip ``grad_clip`` (5).
- Discriminator update on greedy samples from ``z ~ U(d_z_range)`` (Texygen's ``generate``: U(-0.01, 1)) and a
  real batch (no gradient reaches the generator)::

      L_D = log(sum_i |s_i0 - l_i|) + d_mmd_weight * MMD^2(f(fake), f(real)) - d_recon_weight * mean_b |z_hat_b - z_b|^2

  over the ``2B`` rows (fake first, ``l = 1`` for fake, ``0`` for real; ``s_i0`` the raw score of column 0), with
  ``z_hat_b - z_b`` broadcast over the ``H`` coordinates of ``z``. Texygen's weights are 0.1 and 0.1, so its
  discriminator *minimises* the MMD and *maximises* the reconstruction error, the opposite signs of both terms
  in the paper (negative weights give the paper's). Texygen's loss is that vector over the batch, so its
  gradient is ``B`` times this mean's: the same Adam update but for Adam's epsilon. Adam ``d_lr`` (1e-4), no clip.

Phases: ``pretrain_d`` (``d_pretrain_steps`` discriminator updates; Texygen 80 x 3; logged and checkpointed
every tenth of them), then ``adversarial``
(``epochs`` epochs of ``g_steps`` generator updates then ``d_steps`` discriminator updates; Texygen 100 epochs of
100 and 15 x 3). Real batches are drawn at random from the training set (stream ``textgan_batches``), latent
codes from the stream ``textgan_z``: both checkpointed, so a resumed run repeats an uninterrupted one exactly.

Metrics: ``g_mmd`` (mean over the epoch's generator updates), ``d_loss``, ``d_gan``, ``d_mmd``, ``d_recon`` (the
last discriminator update), the task metrics (sampled at temperature 1 from ``h_0 = 0``, as for every
algorithm), and on the synthetic task ``nll_oracle_z``: the oracle NLL of ``eval.n_samples`` greedy sequences
from ``z ~ U(d_z_range)``, the samples Texygen's TextGAN reports.

Several ranks: every rank draws the same global real and latent batches and keeps its shard; the features
(and the discriminator's scores, reconstructions and codes) are gathered, so every rank computes the loss of the
whole batch (the MMD and the log-L1 term do not split into per-shard parts), and the gathered gradient with DDP's
average gives the one-process update: two ranks train like one process up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..config import ConfigError, non_negative, positive
from ..metrics.nll import sequence_nll_sum
from ..models.textgan_discriminator import TextGANDiscriminator
from .divergence import backward_step, finite_loss
from .experiment import derived_seed
from .gumbel import frozen
from .mmd import TEXYGEN_SIGMAS, mmd2
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

PRETRAIN_D = "pretrain_d"
ADVERSARIAL = "adversarial"


@dataclass
class TextGANConfig:
    """The ``[textgan]`` table (Texygen's ``TextganMmd.train_oracle`` by default)."""

    d_pretrain_steps: int = 240
    """Discriminator updates before the adversarial phase (Texygen: 80 rounds of 3)."""
    epochs: int = 100
    g_steps: int = 100
    """Generator updates per epoch."""
    d_steps: int = 45
    """Discriminator updates per epoch, after the generator's (Texygen: 15 rounds of 3)."""
    g_lr: float = 0.01
    d_lr: float = 1e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    """Global gradient-norm clip of the generator (0: none); the discriminator is not clipped."""
    soft_argmax_scale: float = 1000.0
    """``L`` in the generator's next input ``softmax(L o_t) @ E``."""
    g_z_range: list[float] = field(default_factory=lambda: [-0.01, 0.01])
    """Uniform range of the latent ``h_0`` in a generator update."""
    d_z_range: list[float] = field(default_factory=lambda: [-0.01, 1.0])
    """Uniform range of the latent ``h_0`` of the discriminator's negatives (and of ``nll_oracle_z``)."""
    d_mmd_weight: float = 0.1
    """Weight of ``MMD^2`` in the discriminator's loss (Texygen's +0.1; the paper's sign is negative)."""
    d_recon_weight: float = 0.1
    """Weight of ``-|z_hat - z|^2`` in the discriminator's loss (Texygen's +0.1; the paper's sign is negative)."""
    sigmas: list[float] = field(default_factory=lambda: list(TEXYGEN_SIGMAS))
    """Kernel widths: ``exp(-d / (2 s))`` each, summed."""
    eval_every: int = 5
    checkpoint_every: int = 5

    def validate(self) -> None:
        positive(self, "g_steps", "g_lr", "d_lr", "batch_size", "soft_argmax_scale", "eval_every",
                 "checkpoint_every")
        non_negative(self, "d_pretrain_steps", "epochs", "d_steps", "grad_clip")
        for name in ("g_z_range", "d_z_range"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or not low_high[0] < low_high[1]:
                raise ConfigError(name, f"must be [low, high] with low < high, got {low_high}")
        if not self.sigmas or not all(s > 0 for s in self.sigmas):
            raise ConfigError("sigmas", f"must be a non-empty list of positive widths, got {self.sigmas}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", f"must be >= 2 (an MMD between batches), got {self.batch_size}")


@register_algorithm("textgan", config=TextGANConfig)
class TextGANTrainer(Trainer):
    """The discriminator, both Adam optimizers and TextGAN's two phases."""

    requires = {"generator": {"language_model", "soft_argmax"}, "discriminator": {"feature_matching"}}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: TextGANConfig = exp.cfg.algo
        self.build_adversaries()

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """Fixed-length sequences, filters that fit them, and a discriminator as wide as the generator's
        embedding."""
        if cfg.task == "text" and cfg.data.ending != "pad":
            raise ConfigError("data.ending", f"algorithm = 'textgan' needs fixed-length sequences (Texygen pads "
                                             f"text to its length): set data.ending = \"pad\", got "
                                             f"{cfg.data.ending!r}")
        cfg.discriminator.check_length(cfg.seq_len, cfg.seq_len_source)
        g_emb = getattr(cfg.generator, "emb_dim", None)
        if g_emb is not None and cfg.discriminator.emb_dim != g_emb:
            raise ConfigError("discriminator.emb_dim", f"must equal generator.emb_dim ({g_emb}): the TextGAN "
                                                       f"discriminator reads the generator's embedding, got "
                                                       f"{cfg.discriminator.emb_dim}")

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(PRETRAIN_D, self.pretrain_discriminator), (ADVERSARIAL, self.adversarial)]

    # ------------------------------------------------------------------ draws
    def real_batch(self) -> torch.Tensor:
        """A random batch ``[B, T]`` of training sequences."""
        data = self.exp.task.train
        idx = torch.randperm(len(data), generator=self.exp.rng("textgan_batches"))[: self.cfg.batch_size]
        return data[idx.to(data.device)]

    def latent(self, rows: int, low_high: list[float], generator: torch.Generator | None = None) -> torch.Tensor:
        """``z ~ U(low, high)``, ``[rows, H]``, on the run's device (from the stream ``textgan_z`` by default)."""
        low, high = low_high
        gen = self.exp.generator
        z = torch.rand(rows, gen.hidden_dim, generator=generator or self.exp.rng("textgan_z"))  # [rows, H]
        return (low + (high - low) * z).to(gen.device)

    # ------------------------------------------------------------------ one update of each network
    def generator_step(self, where: str) -> float:
        """One generator update: MMD^2 between the features of a soft-argmax sample and of a real batch.

        With several ranks each rolls out its shard of the global latent batch and embeds its shard of the real
        batch; the features are gathered (:meth:`~seqgan_kit.distributed.Ranks.gather_rows`) and every rank
        computes the MMD of the whole batch."""
        s, gen, disc, ranks = self.cfg, self.exp.generator, self.disc, self.exp.ranks
        batch = self.real_batch()  # [B, T], the same on every rank
        z_all = self.latent(len(batch), s.g_z_range)  # [B, H], the same on every rank
        real, z = ranks.shard(batch), ranks.shard(z_all)  # [B_r, T], [B_r, H]
        gen.train()
        with frozen(disc), ranks.autocast():
            soft, emb_real = self.g_model(lambda g: (g.soft_argmax_rollout(z, s.soft_argmax_scale)[1],
                                                     g.embedding(real)))  # [B_r, T, E] each
            f_fake = ranks.gather_rows(disc.features(soft), len(batch))  # [B, D]
            f_real = ranks.gather_rows(disc.features(emb_real), len(batch))  # [B, D]
            loss = mmd2(f_fake, f_real, s.sigmas)
        value = finite_loss(loss.detach(), f"{where} (generator)")
        backward_step(self.g_optimizer, loss, f"{where} (generator)", s.grad_clip, gen.parameters())
        return value

    def discriminator_loss(self, real: torch.Tensor, z: torch.Tensor, total: int | None = None
                           ) -> dict[str, torch.Tensor]:
        """Texygen's discriminator loss on greedy samples from ``z [B_r, H]`` and ``real [B_r, T]`` (this rank's
        shards of a global batch of ``total`` rows, default ``len(real)``): ``loss`` and its terms ``gan``,
        ``mmd``, ``recon`` over the whole batch (scalars; no gradient reaches the generator)."""
        s, gen, ranks = self.cfg, self.exp.generator, self.exp.ranks
        total = len(real) if total is None else total
        with torch.no_grad():
            fake, _ = gen.soft_argmax_rollout(z, s.soft_argmax_scale)  # [B_r, T] greedy tokens
            emb_fake, emb_real = gen.embedding(fake), gen.embedding(real)  # [B_r, T, E] each

        def parts(d: TextGANDiscriminator) -> tuple[torch.Tensor, ...]:
            f_fake = ranks.gather_rows(d.features(emb_fake), total)  # [B, D]
            f_real = ranks.gather_rows(d.features(emb_real), total)  # [B, D]
            return f_fake, f_real, d.scores(torch.cat([f_fake, f_real])), d.reconstruct(f_fake)

        f_fake, f_real, scores, z_hat = self.d_model(parts)  # scores [2B, 2], z_hat [B, 1]
        z_all = ranks.gather_rows(z, total).float()  # [B, H]
        labels = torch.cat([torch.ones(total), torch.zeros(total)]).to(scores.device)  # [2B]: 1 = fake
        gan = (scores.float()[:, 0] - labels).abs().sum().log()
        mmd = mmd2(f_fake, f_real, s.sigmas)
        recon = -(z_hat.float() - z_all).square().sum(dim=1).mean()  # [B, 1] - [B, H] -> [B, H] -> [B]
        loss = gan + s.d_mmd_weight * mmd + s.d_recon_weight * recon
        return {"loss": loss, "gan": gan, "mmd": mmd, "recon": recon}

    def discriminator_step(self, where: str) -> dict[str, float]:
        """One discriminator update; returns the loss and its terms."""
        s, ranks = self.cfg, self.exp.ranks
        batch = self.real_batch()
        z_all = self.latent(len(batch), s.d_z_range)
        self.disc.train()
        self.exp.generator.eval()
        with ranks.autocast():
            terms = self.discriminator_loss(ranks.shard(batch), ranks.shard(z_all), len(batch))
        finite_loss(terms["loss"].detach(), f"{where} (discriminator)")
        backward_step(self.d_optimizer, terms["loss"], f"{where} (discriminator)")
        return {f"d_{k}": float(v.detach()) for k, v in terms.items()}

    # ------------------------------------------------------------------ Texygen's sampling protocol
    @torch.no_grad()
    def nll_oracle_z(self, phase: str, unit: int) -> dict[str, float]:
        """``{"nll_oracle_z": ...}``: the oracle's mean NLL of ``eval.n_samples`` greedy sequences from
        ``z ~ U(d_z_range)`` (a stream of its own per evaluation point); empty without an oracle and on ranks
        other than 0."""
        oracle = getattr(self.exp.task, "oracle", None)
        if oracle is None or not self.exp.ranks.is_main:  # only rank 0 writes the record
            return {}
        gen, e = self.exp.generator, self.exp.cfg.eval
        rng = torch.Generator().manual_seed(derived_seed(self.exp.cfg.seed, f"textgan_z_eval:{phase}:{unit}"))
        total, count = 0.0, 0
        gen.eval()
        for lo in range(0, e.n_samples, e.batch_size):
            z = self.latent(min(e.batch_size, e.n_samples - lo), self.cfg.d_z_range, rng)
            with self.exp.ranks.autocast():
                tokens, _ = gen.soft_argmax_rollout(z, self.cfg.soft_argmax_scale)
            t, c = sequence_nll_sum(oracle, tokens, e.batch_size)
            total, count = total + t, count + c
        return {"nll_oracle_z": total / max(count, 1)}

    # ------------------------------------------------------------------ the phases
    def pretrain_step(self, u: int) -> dict[str, float]:
        return self.discriminator_step(f"discriminator pretraining step {u}")

    def pretrain_discriminator(self, done: int) -> None:
        s, exp = self.cfg, self.exp
        steps = 0 if exp.cfg.init.discriminator else s.d_pretrain_steps
        every = max(1, steps // 10)
        run_units(exp, PRETRAIN_D, done, steps, self.pretrain_step, eval_every=every, checkpoint_every=every,
                  evaluate=False)

    def epoch(self, u: int) -> dict[str, float]:
        """Adversarial epoch ``u``: ``g_steps`` generator updates, then ``d_steps`` discriminator updates."""
        s, exp = self.cfg, self.exp
        where = f"adversarial epoch {u}"
        d_stats = exp.state.setdefault("textgan_d", {})  # the latest discriminator update's loss and terms
        g_mmd = sum(self.generator_step(where) for _ in range(s.g_steps)) / s.g_steps
        for _ in range(s.d_steps):
            d_stats.update(self.discriminator_step(where))
        metrics = {"g_mmd": g_mmd, **d_stats}
        if u % s.eval_every == 0 or u == s.epochs:
            metrics.update(self.nll_oracle_z(ADVERSARIAL, u))
        return metrics

    def adversarial(self, done: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ADVERSARIAL, done, s.epochs, self.epoch, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, unit="epoch",
                  first=self.nll_oracle_z(ADVERSARIAL, 0) if done == 0 else None)
        exp.save_weights("generator.safetensors", ["generator"])
