"""MaskGAN (Fedus, Goodfellow & Dai, ICLR 2018): actor-critic in-filling, after the shared MLE pretraining.

Stages (each checkpoints and resumes exactly):

1. ``pretrain_g``: the toolkit's ordinary MLE phase trains the ``[generator]`` LSTM language model.
2. ``mask_mle`` (``mask_mle_steps`` steps): at its start the LM's embedding, LSTM and softmax initialise the
   in-filler's encoder and decoder (the released code's LM-to-MaskGAN variable mapping); then cross-entropy of
   the in-filler on the masked tokens (teacher forcing).
3. ``d_pretrain`` (``d_pretrain_steps`` steps): at its start the discriminator's embedding, ``<missing>``
   vector, encoder, decoder and attention are copied from the trained in-filler (the released code's GAN mode
   restores them from the MaskMLE checkpoint, ``variable_mapping.dis_seq2seq_vd``); its real/fake head and
   critic keep their own initialisation. Then discriminator-only updates (its own Adam at ``d_pretrain_lr``, the
   discriminator loss only, the in-filler fixed), as the released ``pretrain_discriminator``.
4. ``actor_critic`` (``steps`` steps): each step makes ``dis_train_iterations`` discriminator + critic updates,
   then one generator update. Reward ``r_t = log D_t`` (log-sigmoid of the discriminator's logit) at masked
   positions, return ``R_t = sum_{s>=t} m_s gamma^(s-t) r_s``. Advantage ``clip(R_t - V_t, -c, c)`` with the
   critic's value ``V_t`` (``baseline = "critic"``); ``clip(sum_{s>=t} m_s gamma^(s-t) (r_s - b_s), -c, c)``
   with ``b_s`` a per-position exponential moving average of the reward (``"ema"``, the released code's
   ``ema`` option; see :func:`update_ema_baselines`); or ``clip(R_t, -c, c)`` (``"none"``). Generator loss
   ``-sum_t m_t log G(x_t) A_t`` (mean over rows). The discriminator's loss is the released code's: the mean of
   the binary cross-entropy over the masked positions of a real sequence and of a filled one, averaged over
   the two (``d_loss``; ``ln 2`` = 0.693 at chance). The critic's loss is the squared error of its value against
   ``R_t`` on masked positions (only its linear head trains unless ``critic_trains_discriminator``). Separate
   Adam optimisers, global-norm clip ``grad_clip`` (10).

Masks (:mod:`seqgan_kit.models.masks`): a fresh ``present`` mask per step from the run's ``maskgan_masks``
stream, drawn inside each sentence (its tokens before EOS); real batches from ``maskgan_batches``; samples from
the global torch stream (all checkpointed). ``windows = true`` (text only) trains on the released code's
setting instead: the training sentences, each with its EOS, concatenated into one stream of running text and
cut into ``window_len``-token windows (the tail that fills no window dropped), masks drawn over the whole
window. Deliberate differences from the released PTB loader: the windows are drawn at random (no LSTM state
carried from one window to the next), and an EOS inside a window is always given, never masked (the in-filler
never writes EOS at a masked position).

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
variational dropout while training (``gen_vd_keep_prob`` 0.33971, ``dis_vd_keep_prob`` 0.71940, the released
README's PTB commands; the released code also keeps it on in the model that fills sequences for the
discriminator and in the discriminator that scores the generator's fills, which here run in eval mode, without
dropout). The released run uses 2-layer LSTMs, which this implementation does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..config import ConfigError, in_range, non_negative, one_of, positive
from ..errors import UserError
from ..metrics.infill import masked_nll
from ..models.maskgan import (
    DISCRIMINATOR_ROLE,
    MaskGANDiscriminator,
    MaskGANDiscriminatorConfig,
    MaskGANGenerator,
    MaskGANGeneratorConfig,
)
from ..models.masks import STRATEGIES, fillable_lengths, make_present, masked_span_length
from .divergence import backward_step, clip_gradients, finite_loss, optimizer_step
from .experiment import derived_seed
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

MASK_MLE = "mask_mle"
D_PRETRAIN = "d_pretrain"
ACTOR_CRITIC = "actor_critic"
MASK_MLE_FILE = "generator_maskmle.safetensors"
MASK_MLE_BEST_FILE = "generator_maskmle_best.safetensors"
START_FROM = ("last", "best")
BASELINES = ("critic", "ema", "none")
EMA_KEY = "maskgan_ema_baselines"
"""``exp.state`` key of the ``ema`` baseline: one float per position (checkpointed)."""


@dataclass
class MaskGANConfig:
    """The ``[maskgan]`` table (defaults: the released code's PTB run; see the module docstring)."""

    is_present_rate: float = 0.5
    mask_strategy: str = "contiguous"
    gen_vd_keep_prob: float = 0.33971
    """The in-filler's variational dropout while it trains (MaskMLE and actor-critic): the probability of keeping
    a unit (the released ``gen_vd_keep_prob`` of its README's PTB commands; 1: no dropout)."""
    dis_vd_keep_prob: float = 0.71940
    """The discriminator's, while it trains (the released ``dis_vd_keep_prob``)."""
    tie_softmax: bool = False
    """The in-filler's softmax weights are its embedding (the released code's ``seq2seq_share_embedding``; needs
    generator.emb_dim == generator.hidden_dim). Off by default: the shared MLE stage trains an LM with its own
    output layer, which tying throws away (poetry, 500 MaskMLE steps: masked-token loss 5.46 tied, 4.17 not)."""
    mask_mle_steps: int = 2000
    mask_mle_lr: float = 7.4876e-4
    eval_rows: int = 1000
    """Held-out rows (a seeded draw from the test split) whose masked positions every MaskMLE evaluation scores:
    ``masked_ppl``, the in-filler's teacher-forced perplexity there (masks drawn once, seeded, by the training
    rule), beside ``lm_masked_ppl``, the pretraining LM's at the same positions (left context only). 0: off."""
    mask_mle_start_from: str = "last"
    """Which in-filler the later stages start from: ``last`` (the released code: the end of MaskMLE) or ``best``
    (the lowest held-out ``masked_ppl`` seen at an evaluation, step 0 included: MaskMLE overfits small corpora),
    kept as ``generator_maskmle_best.safetensors``."""
    steps: int = 2000
    """Actor-critic steps (one generator update each)."""
    batch_size: int = 64
    windows: bool = False
    """Train on fixed-length windows of running text (the training sentences concatenated, EOS kept) instead of
    one sentence per row: the released code's setting, for corpora of running text (text runs only)."""
    window_len: int = 20
    """Tokens per window with ``windows = true`` (the released code's ``sequence_length``)."""
    d_pretrain_steps: int = 100
    """Discriminator-only updates after it is initialised from the in-filler, before the first generator update
    (the released ``--dis_pretrain_steps``: 100 in the one launch command that sets it, the IMDB GAN-mode
    example of ``train_mask_gan.py``; its README's PTB GAN-mode command leaves it unset, i.e. 0)."""
    d_pretrain_lr: float = 5e-3
    """Adam learning rate of those updates (the released ``dis_pretrain_learning_rate``)."""
    gen_lr: float = 3.8877e-5
    dis_lr: float = 5e-4
    critic_lr: float = 5.1761e-7
    dis_train_iterations: int = 2
    discount: float = 0.89072
    baseline: str = "critic"
    baseline_decay: float = 0.99
    """Decay of the ``ema`` baseline's per-position moving averages."""
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
        one_of(self, "mask_mle_start_from", START_FROM)
        non_negative(self, "eval_rows")
        positive(self, "batch_size", "mask_mle_lr", "gen_lr", "dis_lr", "critic_lr", "dis_train_iterations",
                 "advantage_clip", "eval_every", "checkpoint_every", "d_pretrain_lr")
        non_negative(self, "mask_mle_steps", "steps", "grad_clip", "d_pretrain_steps")
        if self.window_len < 2:
            raise ConfigError("window_len", f"must be at least 2 tokens, got {self.window_len}")
        in_range(self, "discount", 0, 1)
        in_range(self, "gen_vd_keep_prob", 0, 1, low_open=True)
        in_range(self, "dis_vd_keep_prob", 0, 1, low_open=True)
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


def update_ema_baselines(old: list[float], reward_sums: torch.Tensor, counts: torch.Tensor,
                         decay: float) -> list[float]:
    """The ``ema`` baseline after one batch: ``b_t <- decay * b_t + (1 - decay) * rbar_t`` at every position
    ``t`` masked in some row of the batch, ``rbar_t = reward_sums[t] / counts[t]`` the mean reward ``log D_t``
    over the rows masked at ``t``; a position masked in no row keeps its ``b_t``. ``old`` (``T`` floats) starts
    at zeros, like the released code's ``tf.train.ExponentialMovingAverage`` of each position's reward.

    Deliberate difference: the released code keeps one average per batch slot and position, over all rows
    (a present position's reward counting as 0); here one per position, over the rows where it is masked.
    ``reward_sums, counts [T]`` -> ``T`` floats.
    """
    out = list(old)
    for t, (total, n) in enumerate(zip(reward_sums.tolist(), counts.tolist(), strict=True)):
        if n > 0:
            out[t] = decay * out[t] + (1.0 - decay) * total / n
    return out


def pack_windows(rows: torch.Tensor, eos_token: int | None, window: int) -> torch.Tensor:
    """The released code's running text: the sentences ``rows [N, T]`` (ids, EOS, padding), each up to and
    including its EOS, concatenated in order and cut into ``[W, window]`` windows (the tail that fills no window
    dropped; ``W`` may be 0)."""
    lengths = fillable_lengths(rows, eos_token)  # [N]
    keep = torch.arange(rows.shape[1], device=rows.device).unsqueeze(0) <= lengths.unsqueeze(1)  # [N, T]
    stream = rows[keep]  # [S] row-major: each sentence's tokens, then its EOS
    count = len(stream) // window
    return stream[: count * window].reshape(count, window)  # [W, window]


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
                                      tie_softmax=self.cfg.tie_softmax, vd_keep_prob=self.cfg.gen_vd_keep_prob)
        # The in-filler wraps the LM and takes its place under the name "generator" (same checkpoint slot, same
        # MLE optimizer parameters): the MLE stage trains and samples the LM through it.
        self.gen: MaskGANGenerator = exp.build_model("maskgan_generator", "generator", gcfg, lm=lm, **sizes)
        exp.modules["generator"] = exp.modules.pop("maskgan_generator")
        exp.generator = self.gen
        dcfg = MaskGANDiscriminatorConfig(emb_dim=lm.emb_dim, hidden_dim=lm.hidden_dim, init_std=std,
                                          vd_keep_prob=self.cfg.dis_vd_keep_prob)
        self.disc: MaskGANDiscriminator = exp.build_model("discriminator", DISCRIMINATOR_ROLE, dcfg,
                                                          vocab_size=exp.task.vocab_size,
                                                          start_token=self.gen.start_token)
        s = self.cfg
        self.seq2seq_params = [p for n, p in self.gen.named_parameters() if not n.startswith("lm.")]
        self.mle_optimizer = exp.adam("maskgan_mle", self.seq2seq_params, s.mask_mle_lr)
        self.g_optimizer = exp.adam("generator_adv", self.seq2seq_params, s.gen_lr)
        self.d_optimizer = exp.adam("discriminator", self.disc.trunk_parameters(), s.dis_lr)
        self.d_pretrain_optimizer = exp.adam("discriminator_pretrain", self.disc.trunk_parameters(), s.d_pretrain_lr)
        self.c_optimizer = exp.adam("critic", self.disc.critic.parameters(), s.critic_lr)
        self.g_model = exp.wrap(self.gen)
        # the critic head sits out of every update without the critic baseline, and of d_pretrain's
        self.d_model = exp.wrap(self.disc, unused_parameters=s.baseline != "critic" or s.d_pretrain_steps > 0)
        self._held_out: tuple[torch.Tensor, torch.Tensor, tuple[float, int]] | None = None
        self.windows = pack_windows(exp.task.train, self.gen.eos_token, s.window_len) if s.windows else None
        if self.windows is not None and len(self.windows) == 0:
            raise UserError(f"maskgan.windows: the training text has fewer than maskgan.window_len = "
                            f"{s.window_len} tokens, so not one window; lower maskgan.window_len")

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        if cfg.task == "text" and cfg.data.ending != "eos":
            raise ConfigError("data.ending", "algorithm 'maskgan' fills sentences that end in EOS: set 'eos'")
        s = cfg.algo
        if s.tie_softmax and cfg.generator.emb_dim != cfg.generator.hidden_dim:
            raise ConfigError("maskgan.tie_softmax", f"needs generator.emb_dim == generator.hidden_dim (got "
                                                     f"{cfg.generator.emb_dim} and {cfg.generator.hidden_dim}); "
                                                     f"set maskgan.tie_softmax = false")
        if s.windows and cfg.task != "text":
            raise ConfigError("maskgan.windows", "packs the sentences of a text corpus into windows of running "
                                                 "text; the synthetic task's sequences have no sentences: set false")
        longest, what = ((s.window_len, "window (maskgan.window_len)") if s.windows
                         else (cfg.seq_len - 1, "sentence (data.max_tokens)") if cfg.task == "text"
                         else (cfg.seq_len, "sequence (oracle.seq_len)"))
        if s.mask_strategy == "contiguous" and masked_span_length(longest, s.is_present_rate) < 1:
            raise ConfigError("maskgan.is_present_rate", f"{s.is_present_rate} masks no token of even a "
                                                         f"{longest}-token {what} (contiguous span of "
                                                         f"int((1 - rate) * L) tokens): lower it")

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(MASK_MLE, self.mask_mle), (D_PRETRAIN, self.d_pretrain), (ACTOR_CRITIC, self.actor_critic)]

    # ------------------------------------------------------------------ data
    def batch(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This rank's rows of a random global real batch ``[B_r, T]``, their fresh ``present`` mask, and the
        rank's share of the global batch's masked positions (the divisor of its masked means)."""
        s, exp = self.cfg, self.exp
        data = exp.task.train if self.windows is None else self.windows
        idx = torch.randperm(len(data), generator=exp.rng("maskgan_batches"))[: s.batch_size]
        real = data[idx.to(data.device)]  # [B, T] sentences, or [B, window_len] windows
        eos = self.gen.eos_token
        if s.windows:  # the whole window is fillable; an EOS inside it stays given
            lengths = torch.full((len(real),), real.shape[1], dtype=torch.long)
        else:
            lengths = fillable_lengths(real, eos)  # [B] tokens before EOS
        present = make_present(lengths, real.shape[1], s.is_present_rate, s.mask_strategy,
                               exp.rng("maskgan_masks"), real.device)
        if s.windows and eos is not None:
            present = present | (real == eos)
        share = max(int((~present).sum()), 1) / exp.ranks.world
        return exp.ranks.shard(real), exp.ranks.shard(present), share

    # ------------------------------------------------------------------ stage 2: MaskMLE
    def start_infilling(self) -> None:
        """The LM-to-MaskGAN weight mapping; the in-filler (everything masked) becomes the sampled model."""
        self.gen.map_from_lm()
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

    def held_out_masked_nll(self) -> dict[str, float]:
        """``masked_ppl`` and ``lm_masked_ppl`` (see ``maskgan.eval_rows``); empty when it is 0."""
        s, gen, exp = self.cfg, self.gen, self.exp
        if s.eval_rows == 0:
            return {}
        if self._held_out is None:  # rows, masks and the LM's summed NLL: fixed for the whole run
            stream = torch.Generator().manual_seed(derived_seed(exp.cfg.seed, "maskgan_eval_masks"))
            pick = torch.randperm(len(exp.task.test), generator=stream)[:s.eval_rows]  # a file may be ordered
            rows = exp.task.test[pick.to(exp.task.test.device)]  # [N, T]
            present = make_present(fillable_lengths(rows, gen.eos_token), rows.shape[1], s.is_present_rate,
                                   s.mask_strategy, stream, rows.device)  # [N, T]
            present = gen.keep_structure(rows, present)
            self._held_out = (rows, present, self._masked_nll(lambda x, _: gen.lm(x) + gen.fill_bias, rows, present))
        rows, present, (lm_sum, count) = self._held_out
        if count == 0:
            return {}
        nll_sum, _ = self._masked_nll(gen.teacher_forced, rows, present)
        return {"masked_ppl": math.exp(nll_sum / count), "lm_masked_ppl": math.exp(lm_sum / count)}

    @staticmethod
    def _masked_nll(logits_of, rows: torch.Tensor, present: torch.Tensor, chunk: int = 256) -> tuple[float, int]:
        """Summed NLL at the masked positions of ``rows [N, T]`` and their count; ``logits_of(rows, present)``
        gives ``[n, T, V]`` logits of a chunk of ``chunk`` rows (the caller sets eval mode)."""
        total, count = 0.0, 0
        with torch.no_grad():
            for lo in range(0, len(rows), chunk):
                x, m = rows[lo:lo + chunk], present[lo:lo + chunk]
                nll, k = masked_nll(logits_of(x, m), x, m)  # logits [n, T, V]
                total, count = total + nll, count + k
        return total, count

    def _mask_mle_report(self, step: int, metrics: dict[str, float]) -> None:
        """The record of an evaluation step; keeps the in-filler of the lowest held-out masked perplexity."""
        exp = self.exp
        training = self.gen.training
        self.gen.eval()
        held_out = self.held_out_masked_nll()
        self.gen.train(training)
        exp.log(MASK_MLE, "step", step, self.cfg.mask_mle_steps, {**metrics, **held_out,
                                                                   **exp.evaluate(MASK_MLE, step)})
        best = exp.state.get("maskmle_best_ppl")
        if "masked_ppl" in held_out and (best is None or held_out["masked_ppl"] < best):
            exp.state.update(maskmle_best_ppl=held_out["masked_ppl"], maskmle_best_step=step)
            exp.save_weights(MASK_MLE_BEST_FILE, ["generator"])

    def mask_mle(self, start: int) -> None:
        s, exp = self.cfg, self.exp
        if start == 0:
            self.start_infilling()
        run_units(exp, MASK_MLE, start, s.mask_mle_steps, lambda step: {"mask_mle_loss": self.mask_mle_step(step)},
                  eval_every=s.eval_every, checkpoint_every=s.checkpoint_every, first={},
                  report=self._mask_mle_report)
        if s.mask_mle_start_from == "best" and "maskmle_best_step" in exp.state:
            exp.load_weights(MASK_MLE_BEST_FILE, ["generator"])
            print(f"[{MASK_MLE}] continuing from the best in-filler (step {exp.state['maskmle_best_step']}, "
                  f"held-out masked perplexity {exp.state['maskmle_best_ppl']:.2f})", flush=True)
        exp.save_weights(MASK_MLE_FILE, ["generator"])

    # ------------------------------------------------------------------ stage 3: actor-critic
    def rewards_and_returns(self, logits: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``r_t = log sigmoid(D_t)`` and ``R_t`` at masked positions (no gradient)."""
        rewards = F.logsigmoid(logits.detach()) * masked.to(logits.dtype)
        return rewards, discounted_returns(rewards, masked, self.cfg.discount)

    def discriminator_step(self, step: int | None = None, pretrain: bool = False) -> tuple[float, float]:
        """One discriminator (+ critic) update on a real batch and its fill; returns (d_loss, critic_loss).

        ``pretrain``: a ``d_pretrain`` update instead (its own optimizer, no critic; critic_loss 0.0)."""
        s, gen, disc, ranks = self.cfg, self.gen, self.disc, self.exp.ranks
        critic = s.baseline == "critic" and not pretrain
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
                values = d.values(out, detach=not s.critic_trains_discriminator) if critic else None
                return real_logits, fake_logits, values

            real_logits, fake_logits, values = self.d_model(score)
        # The released code's create_dis_loss: each side's mean over the masked positions, then their mean.
        d_real = masked_mean(F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits),
                                                                reduction="none"), masked, count)
        d_fake = masked_mean(F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits),
                                                                reduction="none"), masked, count)
        d_loss = (d_real + d_fake) / 2
        total, c_loss = d_loss, torch.zeros(())
        if critic:
            _, returns = self.rewards_and_returns(fake_logits, masked)
            c_loss = masked_mean((values - returns) ** 2, masked, count)
            total = d_loss + c_loss
        d_value, c_value = ranks.sums(d_loss.detach() / ranks.world, c_loss.detach() / ranks.world)
        if critic:
            c_value = finite_loss(c_value, f"actor_critic step {step} (critic)")
        where = f"{D_PRETRAIN if pretrain else ACTOR_CRITIC} step {step} (discriminator)"
        value = finite_loss(d_value, where)
        d_optimizer = self.d_pretrain_optimizer if pretrain else self.d_optimizer
        d_optimizer.zero_grad(set_to_none=True)
        self.c_optimizer.zero_grad(set_to_none=True)
        total.backward()
        clip_gradients(disc.trunk_parameters(), s.grad_clip)
        clip_gradients(list(disc.critic.parameters()), s.grad_clip)
        optimizer_step(d_optimizer, where)
        if critic:
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
                adv = advantages(returns, disc.values(out), masked, s.advantage_clip)
            elif s.baseline == "ema":  # the moving average subtracted from each reward inside the discounted sum
                b = torch.tensor(self.ema_baselines(real.shape[1]), dtype=rewards.dtype, device=rewards.device)
                adv = advantages(discounted_returns(rewards - b, masked, s.discount), 0.0, masked, s.advantage_clip)
            else:
                adv = advantages(returns, 0.0, masked, s.advantage_clip)
        loss = generator_loss(log_probs, adv, masked)
        if ranks.world > 1:  # a mean over rows: this rank's share of the global batch's
            loss = loss * ranks.weight(len(real), min(s.batch_size, len(exp.task.train)))
        where = f"actor_critic step {step} (generator)"
        value = finite_loss(ranks.mean(loss), where)
        backward_step(self.g_optimizer, loss, where, s.grad_clip, self.seq2seq_params)
        m = masked.to(returns.dtype)
        reward_sum, count = ranks.sums((rewards * m).sum(), m.sum())
        if s.baseline == "ema":
            exp.state[EMA_KEY] = update_ema_baselines(
                self.ema_baselines(real.shape[1]), ranks.sum_tensor((rewards * m).sum(0)),
                ranks.sum_tensor(m.sum(0)), s.baseline_decay)
        return value, reward_sum / max(count, 1)

    def ema_baselines(self, length: int) -> list[float]:
        """The ``ema`` baseline's ``length`` per-position averages (zeros before the first generator update)."""
        old = self.exp.state.get(EMA_KEY)
        return list(old) if old is not None and len(old) == length else [0.0] * length

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

    def d_pretrain(self, start: int) -> None:
        """The discriminator from the in-filler (once, at the start), then ``d_pretrain_steps`` updates of it
        alone. A phase of its own, so a resume restarts neither the mapping nor the updates done."""
        s, exp = self.cfg, self.exp
        if start == 0:
            self.disc.map_from_infiller(self.gen)
        run_units(exp, D_PRETRAIN, start, s.d_pretrain_steps,
                  lambda step: {"d_loss": self.discriminator_step(step, pretrain=True)[0]},
                  eval_every=s.eval_every, checkpoint_every=s.checkpoint_every, evaluate=False)

    def actor_critic(self, start: int) -> None:
        s, exp = self.cfg, self.exp
        run_units(exp, ACTOR_CRITIC, start, s.steps, self.actor_critic_step, eval_every=s.eval_every,
                  checkpoint_every=s.checkpoint_every, first={})
        exp.save_weights("generator.safetensors", ["generator"])
        exp.save_weights("discriminator.safetensors", ["discriminator"])
