"""MaskGAN (Fedus, Goodfellow & Dai, ICLR 2018): actor-critic in-filling, after the shared MLE pretraining.

Stages (each checkpoints and resumes exactly):

1. ``pretrain_g``: the toolkit's ordinary MLE phase trains the ``[generator]`` LSTM language model.
2. ``mask_mle`` (``mask_mle_steps`` steps): at its start the LM's embedding, LSTM and softmax initialise the
   in-filler's encoder and decoder and the discriminator's embedding, encoder and decoder (the released code's
   LM-to-MaskGAN variable mapping); then cross-entropy of the in-filler on the masked tokens (teacher forcing).
3. ``actor_critic`` (``steps`` steps): each step makes ``dis_train_iterations`` discriminator + critic updates,
   then one generator update. Reward ``r_t = log D_t`` (log-sigmoid of the discriminator's logit) at masked
   positions, return ``R_t = sum_{s>=t} m_s gamma^(s-t) r_s``, advantage ``clip(R_t - b_t, -c, c)`` with the
   baseline ``b_t`` the critic's value (``baseline = "critic"``), an EMA of the mean masked return (``"ema"``)
   or 0 (``"none"``); generator loss ``-sum_t m_t log G(x_t) A_t`` (mean over rows). The discriminator's loss is
   the binary cross-entropy of its per-token logits on the masked positions of a real and a filled sequence;
   the critic's the squared error of its value against ``R_t`` on masked positions (only its linear head trains
   unless ``critic_trains_discriminator``). Separate Adam optimisers, global-norm clip ``grad_clip`` (10).

Masks (:mod:`seqgan_kit.models.masks`): a fresh ``present`` mask per step from the run's ``maskgan_masks`` stream;
real batches from ``maskgan_batches``; samples from the global torch stream (all checkpointed).

The model evaluated and sampled (``exp.generator``, ``seqgan-kit sample``) is the ``maskgan`` generator kind,
which wraps the pretraining LM: it is the LM through MLE; from ``mask_mle`` on it is the in-filler with
everything masked, i.e. MaskGAN's unconditional samples, whatever ``is_present_rate`` the in-filler trains with
(all-``<missing>`` input for fixed-length sequences, length-conditional for text: see
:mod:`seqgan_kit.models.maskgan`). With ``is_present_rate = 0`` training itself is unconditional: an
actor-critic LM GAN with dense per-token rewards, which also runs on the synthetic oracle. ``[init] generator``
(an MLE run's generator) replaces stage 1. The in-filler at the end of ``mask_mle`` is kept as
``generator_maskmle.safetensors`` (the MaskMLE baseline), the final one as ``generator.safetensors``.

Defaults are the released code's PTB run (``research/maskgan``: gen lr 3.8877e-5, dis lr 5e-4, critic lr
5.1761e-7, discount 0.89072, 2 discriminator iterations per generator step, present rate 0.5, contiguous masks);
the released run also uses 2-layer LSTMs and variational dropout, which this implementation does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..config import ConfigError, in_range, non_negative, one_of, positive
from ..models.maskgan import (
    DISCRIMINATOR_ROLE,
    MaskGANDiscriminator,
    MaskGANDiscriminatorConfig,
    MaskGANGenerator,
    MaskGANGeneratorConfig,
)
from ..models.masks import STRATEGIES, make_present, masked_span_length
from .divergence import backward_step, clip_gradients, finite_loss, optimizer_step
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

MASK_MLE = "mask_mle"
ACTOR_CRITIC = "actor_critic"
MASK_MLE_FILE = "generator_maskmle.safetensors"
BASELINES = ("critic", "ema", "none")


@dataclass
class MaskGANConfig:
    """The ``[maskgan]`` table (defaults: the released code's PTB run; see the module docstring)."""

    is_present_rate: float = 0.5
    mask_strategy: str = "contiguous"
    tie_softmax: bool = False
    """The in-filler's softmax weights are its embedding (the released code's ``seq2seq_share_embedding``; needs
    generator.emb_dim == generator.hidden_dim). Off by default: the shared MLE stage trains an LM with its own
    output layer, which tying throws away (poetry, 500 MaskMLE steps: masked-token loss 5.46 tied, 4.17 not)."""
    mask_mle_steps: int = 2000
    mask_mle_lr: float = 7.4876e-4
    steps: int = 2000
    """Actor-critic steps (one generator update each)."""
    batch_size: int = 64
    gen_lr: float = 3.8877e-5
    dis_lr: float = 5e-4
    critic_lr: float = 5.1761e-7
    dis_train_iterations: int = 2
    discount: float = 0.89072
    baseline: str = "critic"
    baseline_decay: float = 0.99
    """EMA decay of the ``ema`` baseline."""
    advantage_clip: float = 5.0
    grad_clip: float = 10.0
    """Global gradient-norm clip of every network (0: none)."""
    critic_trains_discriminator: bool = False
    """The critic's loss also trains the discriminator's trunk (default: its linear head only)."""
    eval_every: int = 50
    checkpoint_every: int = 50

    def validate(self) -> None:
        in_range(self, "is_present_rate", 0, 1, high_open=True)
        one_of(self, "mask_strategy", STRATEGIES)
        one_of(self, "baseline", BASELINES)
        positive(self, "batch_size", "mask_mle_lr", "gen_lr", "dis_lr", "critic_lr", "dis_train_iterations",
                 "advantage_clip", "eval_every", "checkpoint_every")
        non_negative(self, "mask_mle_steps", "steps", "grad_clip")
        in_range(self, "discount", 0, 1)
        in_range(self, "baseline_decay", 0, 1, high_open=True)


# --------------------------------------------------------------------------- the objective
def discounted_returns(rewards: torch.Tensor, masked: torch.Tensor, gamma: float) -> torch.Tensor:
    """``R_t = sum_{s>=t} m_s gamma^(s-t) r_s``: ``rewards, masked [B, T]`` -> ``[B, T]`` (0 where not masked)."""
    m = masked.to(rewards.dtype)
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = m[:, t] * rewards[:, t] + gamma * running
        out[:, t] = running
    return out * m


def advantages(returns: torch.Tensor, baseline: torch.Tensor | float, masked: torch.Tensor,
               clip: float) -> torch.Tensor:
    """``clip(R_t - b_t, -clip, clip)`` at masked positions, 0 elsewhere (no gradient)."""
    return ((returns - baseline).clamp(-clip, clip) * masked.to(returns.dtype)).detach()


def generator_loss(log_probs: torch.Tensor, adv: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """``-sum_t m_t log G(x_t) A_t``, mean over rows."""
    return -(log_probs * adv * masked.to(log_probs.dtype)).sum() / log_probs.shape[0]


def masked_mean(values: torch.Tensor, masked: torch.Tensor, count: float | None = None) -> torch.Tensor:
    """The mean of ``values [B, T]`` over the ``masked`` positions (``count``: divide by this instead, a rank's
    share of the masked positions of a global batch)."""
    m = masked.to(values.dtype)
    return (values * m).sum() / (m.sum().clamp(min=1) if count is None else count)


@register_algorithm("maskgan", config=MaskGANConfig)
class MaskGANTrainer(Trainer):
    """The in-filler, the discriminator with its critic, four Adam optimisers and the two MaskGAN phases.

    It builds its discriminator itself (from the LM's sizes): a recipe's ``[discriminator]`` table is refused."""

    requires = {"generator": {"language_model", "lstm_weights"}}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: MaskGANConfig = exp.cfg.algo
        lm = exp.generator
        std = exp.cfg.generator.init_std
        sizes = dict(vocab_size=exp.task.vocab_size, seq_len=exp.task.seq_len, **exp.task.special_tokens())
        gcfg = MaskGANGeneratorConfig(emb_dim=lm.emb_dim, hidden_dim=lm.hidden_dim, init_std=std,
                                      tie_softmax=self.cfg.tie_softmax)
        # The in-filler wraps the LM and takes its place under the name "generator" (same checkpoint slot, same
        # MLE optimizer parameters): the MLE stage trains and samples the LM through it.
        self.gen: MaskGANGenerator = exp.build_model("maskgan_generator", "generator", gcfg, lm=lm, **sizes)
        exp.modules["generator"] = exp.modules.pop("maskgan_generator")
        exp.generator = self.gen
        dcfg = MaskGANDiscriminatorConfig(emb_dim=lm.emb_dim, hidden_dim=lm.hidden_dim, init_std=std)
        self.disc: MaskGANDiscriminator = exp.build_model("discriminator", DISCRIMINATOR_ROLE, dcfg,
                                                          vocab_size=exp.task.vocab_size,
                                                          start_token=self.gen.start_token)
        s = self.cfg
        self.seq2seq_params = [p for n, p in self.gen.named_parameters() if not n.startswith("lm.")]
        self.mle_optimizer = exp.adam("maskgan_mle", self.seq2seq_params, s.mask_mle_lr)
        self.g_optimizer = exp.adam("generator_adv", self.seq2seq_params, s.gen_lr)
        self.d_optimizer = exp.adam("discriminator", self.disc.trunk_parameters(), s.dis_lr)
        self.c_optimizer = exp.adam("critic", self.disc.critic.parameters(), s.critic_lr)
        self.g_model = exp.wrap(self.gen)
        self.d_model = exp.wrap(self.disc, unused_parameters=s.baseline != "critic")  # the critic head sits out

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        if cfg.task == "text" and cfg.data.ending != "eos":
            raise ConfigError("data.ending", "algorithm 'maskgan' fills sentences that end in EOS: set 'eos'")
        s = cfg.algo
        if s.tie_softmax and cfg.generator.emb_dim != cfg.generator.hidden_dim:
            raise ConfigError("maskgan.tie_softmax", f"needs generator.emb_dim == generator.hidden_dim (got "
                                                     f"{cfg.generator.emb_dim} and {cfg.generator.hidden_dim}); "
                                                     f"set maskgan.tie_softmax = false")
        if s.mask_strategy == "contiguous" and masked_span_length(cfg.seq_len, s.is_present_rate) < 1:
            raise ConfigError("maskgan.is_present_rate", f"{s.is_present_rate} masks no token of a {cfg.seq_len}-"
                                                         f"token sequence (contiguous span of "
                                                         f"int((1 - rate) * T) - 1 tokens)")

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(MASK_MLE, self.mask_mle), (ACTOR_CRITIC, self.actor_critic)]

    # ------------------------------------------------------------------ data
    def batch(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This rank's rows of a random global real batch ``[B_r, T]``, their fresh ``present`` mask, and the
        rank's share of the global batch's masked positions (the divisor of its masked means)."""
        s, exp = self.cfg, self.exp
        data = exp.task.train
        idx = torch.randperm(len(data), generator=exp.rng("maskgan_batches"))[: s.batch_size]
        real = data[idx.to(data.device)]
        present = make_present(len(real), real.shape[1], s.is_present_rate, s.mask_strategy,
                               exp.rng("maskgan_masks"), real.device)
        present = self.gen.keep_structure(real, present)
        share = max(int((~present).sum()), 1) / exp.ranks.world
        return exp.ranks.shard(real), exp.ranks.shard(present), share

    # ------------------------------------------------------------------ stage 2: MaskMLE
    def start_infilling(self) -> None:
        """The LM-to-MaskGAN weight mapping; the in-filler (everything masked) becomes the sampled model."""
        self.gen.map_from_lm()
        self.disc.map_lstm_from(self.gen.lm)
        self.gen.set_infilling(True)
        self.gen.set_lengths(self.exp.task.train)

    def mask_mle_step(self, step: int | None = None) -> float:
        real, present, share = self.batch()
        ranks = self.exp.ranks
        self.gen.train()
        masked = ~present
        with ranks.local_random():
            logits = self.g_model(lambda g: g.teacher_forced(real, present))  # [B, T, V]
        if ranks.world == 1:
            loss = F.cross_entropy(logits[masked], real[masked])
        else:
            loss = F.cross_entropy(logits[masked], real[masked], reduction="sum") / share
        where = f"mask_mle step {step}"
        value = finite_loss(ranks.mean(loss), where)
        backward_step(self.mle_optimizer, loss, where, self.cfg.grad_clip, self.seq2seq_params)
        return value

    def mask_mle(self, start: int) -> None:
        s, exp = self.cfg, self.exp
        if start == 0:
            self.start_infilling()
        run_units(exp, MASK_MLE, start, s.mask_mle_steps, lambda step: {"mask_mle_loss": self.mask_mle_step(step)},
                  eval_every=s.eval_every, checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights(MASK_MLE_FILE, ["generator"])

    # ------------------------------------------------------------------ stage 3: actor-critic
    def rewards_and_returns(self, logits: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``r_t = log sigmoid(D_t)`` and ``R_t`` at masked positions (no gradient)."""
        rewards = F.logsigmoid(logits.detach()) * masked.to(logits.dtype)
        return rewards, discounted_returns(rewards, masked, self.cfg.discount)

    def discriminator_step(self, step: int | None = None) -> tuple[float, float]:
        """One discriminator (+ critic) update on a real batch and its fill; returns (d_loss, critic_loss)."""
        s, gen, disc, ranks = self.cfg, self.gen, self.disc, self.exp.ranks
        real, present, share = self.batch()
        count = None if ranks.world == 1 else share
        masked = ~present
        with ranks.local_random():
            with torch.no_grad(), ranks.autocast():
                gen.eval()
                filled, _ = gen.fill(real, present)
            disc.train()

            def score(d: MaskGANDiscriminator) -> tuple[torch.Tensor, ...]:
                real_logits, _ = d(real, present)
                fake_logits, out = d(filled, present)
                values = d.values(out, detach=not s.critic_trains_discriminator) if s.baseline == "critic" else None
                return real_logits, fake_logits, values

            real_logits, fake_logits, values = self.d_model(score)
        d_loss = (masked_mean(F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits),
                                                                 reduction="none"), masked, count)
                  + masked_mean(F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits),
                                                                   reduction="none"), masked, count))
        total, c_loss = d_loss, torch.zeros(())
        if s.baseline == "critic":
            _, returns = self.rewards_and_returns(fake_logits, masked)
            c_loss = masked_mean((values - returns) ** 2, masked, count)
            total = d_loss + c_loss
        d_value, c_value = ranks.sums(d_loss.detach() / ranks.world, c_loss.detach() / ranks.world)
        if s.baseline == "critic":
            c_value = finite_loss(c_value, f"actor_critic step {step} (critic)")
        where = f"actor_critic step {step} (discriminator)"
        value = finite_loss(d_value, where)
        self.d_optimizer.zero_grad(set_to_none=True)
        self.c_optimizer.zero_grad(set_to_none=True)
        total.backward()
        clip_gradients(disc.trunk_parameters(), s.grad_clip)
        clip_gradients(list(disc.critic.parameters()), s.grad_clip)
        optimizer_step(self.d_optimizer, where)
        if s.baseline == "critic":
            optimizer_step(self.c_optimizer, f"actor_critic step {step} (critic)")
        return value, c_value

    def generator_step(self, step: int | None = None) -> tuple[float, float]:
        """One actor-critic update of the in-filler; returns (g_loss, mean reward at masked positions)."""
        s, gen, disc, exp = self.cfg, self.gen, self.disc, self.exp
        ranks = exp.ranks
        real, present, share = self.batch()
        masked = ~present
        gen.train()
        with ranks.local_random():
            filled, log_probs = self.g_model(lambda g: g.fill(real, present))
        with torch.no_grad(), ranks.autocast():
            disc.eval()
            logits, out = disc(filled, present)
            rewards, returns = self.rewards_and_returns(logits, masked)
            if s.baseline == "critic":
                baseline = disc.values(out)
            elif s.baseline == "ema":
                baseline = exp.state.get("maskgan_ema_baseline", 0.0)
            else:
                baseline = 0.0
        adv = advantages(returns, baseline, masked, s.advantage_clip)
        loss = generator_loss(log_probs, adv, masked)
        if ranks.world > 1:  # a mean over rows: this rank's share of the global batch's
            loss = loss * ranks.weight(len(real), min(s.batch_size, len(exp.task.train)))
        where = f"actor_critic step {step} (generator)"
        value = finite_loss(ranks.mean(loss), where)
        backward_step(self.g_optimizer, loss, where, s.grad_clip, self.seq2seq_params)
        m = masked.to(returns.dtype)
        return_sum, reward_sum, count = ranks.sums((returns * m).sum(), (rewards * m).sum(), m.sum())
        if s.baseline == "ema":
            mean_return = return_sum / max(count, 1)
            old = exp.state.get("maskgan_ema_baseline")
            exp.state["maskgan_ema_baseline"] = (mean_return if old is None
                                                 else s.baseline_decay * old + (1 - s.baseline_decay) * mean_return)
        return value, reward_sum / max(count, 1)

    def actor_critic_step(self, step: int) -> dict[str, float]:
        """``dis_train_iterations`` discriminator (+ critic) updates, then one generator update; the latest
        losses and the mean reward."""
        s = self.cfg
        losses = self.exp.state.setdefault("maskgan_losses", {})
        for _ in range(s.dis_train_iterations):
            losses["d_loss"], c_loss = self.discriminator_step(step)
            if s.baseline == "critic":
                losses["critic_loss"] = c_loss
        losses["g_loss"], losses["mean_reward"] = self.generator_step(step)
        return dict(losses)

    def actor_critic(self, start: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ACTOR_CRITIC, start, s.steps, self.actor_critic_step, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights("generator.safetensors", ["generator"])
        exp.save_weights("discriminator.safetensors", ["discriminator"])
