"""MaskGAN's models (Fedus, Goodfellow & Dai, ICLR 2018): an attentive seq2seq in-filler and its discriminator.

Generator (``generator.kind = "maskgan"``, :class:`MaskGANGenerator`). An encoder LSTM reads the masked
sequence (a masked token is read as a learned ``<missing>`` embedding); a decoder LSTM starts from the encoder's
final state and attends over the encoder's states (Luong's ``general`` score ``h_t^T W_a e_s``); its output
``o_t = h_t + W_c c_t`` (the attention context added to the decoder state, so that ``W_c = 0`` turns the
attention off and leaves a plain LSTM language model) is projected onto the vocabulary by its own output
layer (mapped from the LM's) or by the transposed embedding (``tie_softmax``, needs ``emb_dim == hidden_dim``),
plus a bias. At a present position the decoder reads
the real token and the output copies it; at a masked position it reads its own previous sample
(:meth:`MaskGANGenerator.fill`). One layer only.

Variational dropout (Gal & Ghahramani 2016), as the released ``seq2seq_vd`` models apply it while training
(``vd_keep_prob`` < 1 and the module in training mode; evaluation and sampling in eval mode see none): for
each LSTM, one mask per sequence, fixed over time, multiplies its input and the ``h`` it carries to the next
step (the released ``VariationalDropoutWrapper``, whose input and recurrent masks are one tensor when the
embedding and the state have one width); a second mask per sequence multiplies the encoder's states and the
decoder's outputs after attention. Masks keep a unit with probability ``vd_keep_prob`` and scale it by
``1 / vd_keep_prob``. The LSTMs then run as a loop of cells instead of one ``nn.LSTM`` call.

The module also holds the pretraining language model ``lm`` (an :class:`LSTMGenerator`, the toolkit's shared MLE
stage trains it) and a ``infilling`` flag. The :class:`SequenceGenerator` API (``forward``, ``initial_state``,
``advance``, ``logits``, hence ``sample``) is the LM's while the flag is off and the in-filler's unconditional
sampler once it is on: for fixed-length sequences (the oracle) the in-filler with an all-``<missing>`` encoder
input; for variable-length text, whose in-filler only ever sees EOS given (fills keep the length), a
length-conditional model ``P(L) P(x_1..x_L | L)``: the EOS position is drawn from the training set's length
distribution (``length_logp``), then the L tokens before it are filled, and ``forward`` gives the matching exact
log-likelihood (so NLL_test is the same model's). :meth:`map_from_lm` copies the LM's embedding, LSTM and
softmax into the encoder and decoder (the released code's LM-to-MaskGAN variable mapping).

Discriminator (role ``infill_discriminator``, :class:`MaskGANDiscriminator`): the same encoder-decoder shape; the
encoder reads the masked real context, the decoder reads the filled sequence, one logit per position (is this
token real?). Its ``critic`` head, a linear map of the decoder output before position t, estimates the return
from position t on (the actor-critic baseline). :meth:`MaskGANDiscriminator.map_from_infiller` copies the
trained in-filler's embedding, ``<missing>`` vector, encoder, decoder and attention into it (the released code
loads them from the MaskMLE checkpoint when its GAN mode starts); its output head and critic stay its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, in_range, positive
from .generator import SequenceGenerator
from .lstm_generator import LSTMGenerator
from .registry import register
from .sampling import DEFAULT_SAMPLER, sample_categorical

DISCRIMINATOR_ROLE = "infill_discriminator"


def _init_(module: nn.Module, std: float, skip: str | None = None) -> None:
    """Every parameter ~ N(0, std) (LSTM ``bias_hh`` zero, as in the LSTM generator); names under ``skip`` kept."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if skip and name.startswith(skip):
                continue
            if "bias_hh" in name:
                p.zero_()
            else:
                p.normal_(0.0, std)


def copy_lstm(dst: nn.LSTM, src: nn.LSTM) -> None:
    """Copy a one-layer LSTM's weights (same sizes)."""
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(dst, name).copy_(getattr(src, name))


class LuongAttention(nn.Module):
    """``a = softmax_s(q^T W_a e_s)``, ``c = sum_s a_s e_s``, output ``q + W_c c``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, hidden, bias=False)  # W_a
        self.combine = nn.Linear(hidden, hidden, bias=False)  # W_c

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``query [B, H]`` or ``[B, L, H]``, ``keys [B, T, H]`` -> same shape as ``query``."""
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # [B, L, H]
        weights = torch.softmax(self.score(q) @ keys.transpose(1, 2), dim=-1)  # [B, L, T]
        out = q + self.combine(weights @ keys)  # [B, L, H]
        return out.squeeze(1) if single else out


def variational_mask(batch: int, units: int, keep: float, like: torch.Tensor) -> torch.Tensor:
    """``[batch, units]``: each entry ``1 / keep`` with probability ``keep``, else 0 (one mask per sequence)."""
    return torch.bernoulli(torch.full((batch, units), keep, dtype=like.dtype, device=like.device)) / keep


@dataclass
class LSTMDropout:
    """The variational dropout masks of one LSTM for one batch: ``inputs [B, E]``, ``state [B, H]`` (the
    ``h`` carried between steps) and ``outputs [B, H]`` (what the model reads of its states)."""

    inputs: torch.Tensor
    state: torch.Tensor
    outputs: torch.Tensor

    @classmethod
    def draw(cls, lstm: nn.LSTM, batch: int, keep: float, like: torch.Tensor) -> LSTMDropout:
        """Masks for ``lstm`` (one mask for input and state when their widths agree, as the released code)."""
        state = variational_mask(batch, lstm.hidden_size, keep, like)
        inputs = state if lstm.input_size == lstm.hidden_size else variational_mask(batch, lstm.input_size, keep,
                                                                                     like)
        return cls(inputs, state, variational_mask(batch, lstm.hidden_size, keep, like))


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
              drop: LSTMDropout | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a one-layer ``lstm``: ``x [B, E]``, ``(h, c)`` each ``[B, H]`` -> the new ``(h, c)``; with
    ``drop``, the input and the carried ``h`` are multiplied by their masks first."""
    h, c = state
    if drop is not None:
        x, h = x * drop.inputs, h * drop.state
    return torch.lstm_cell(x, (h, c), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
             drop: LSTMDropout | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``x [B, T, E]`` through a one-layer ``lstm`` from ``state`` (``(h, c)`` each ``[1, B, H]``, zeros if None)
    -> states ``[B, T, H]`` and the final ``(h, c)`` (each ``[1, B, H]``). Without ``drop``: ``lstm`` itself;
    with it, a loop of :func:`lstm_step` (the masks differ by row, not by step)."""
    if drop is None:
        return lstm(x, state)
    if state is None:
        zeros = x.new_zeros(x.shape[0], lstm.hidden_size)
        h, c = zeros, zeros
    else:
        h, c = state[0][0], state[1][0]
    outs = []
    for t in range(x.shape[1]):
        h, c = lstm_step(lstm, x[:, t], (h, c), drop)
        outs.append(h)
    return torch.stack(outs, dim=1), (h.unsqueeze(0), c.unsqueeze(0))


class _Seq2Seq(nn.Module):
    """Embedding, ``<missing>`` vector, encoder and decoder LSTMs and attention (shared by G and D)."""

    def _build(self, vocab_size: int, emb_dim: int, hidden_dim: int, vd_keep_prob: float = 1.0) -> None:
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.missing = nn.Parameter(torch.zeros(emb_dim))
        self.encoder = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.decoder = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.attention = LuongAttention(hidden_dim)
        self.vd_keep_prob = vd_keep_prob

    def dropout(self, batch: int) -> tuple[LSTMDropout | None, LSTMDropout | None]:
        """Fresh variational dropout masks of the encoder and the decoder for ``batch`` rows, drawn from the
        global torch stream; ``(None, None)`` in eval mode or with ``vd_keep_prob = 1``."""
        if not self.training or self.vd_keep_prob >= 1.0:
            return None, None
        like = self.embedding.weight
        return (LSTMDropout.draw(self.encoder, batch, self.vd_keep_prob, like),
                LSTMDropout.draw(self.decoder, batch, self.vd_keep_prob, like))

    def encode(self, seqs: torch.Tensor, present: torch.Tensor, drop: LSTMDropout | None = None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Encoder states ``[B, T, H]`` of the masked sequence and its final ``(h, c)`` (each ``[1, B, H]``);
        ``drop``: the encoder's dropout masks (its output mask multiplies the states, not the final state)."""
        emb = torch.where(present.unsqueeze(-1), self.embedding(seqs), self.missing)  # [B, T, E]
        states, final = run_lstm(self.encoder, emb, None, drop)
        if drop is not None:
            states = states * drop.outputs.unsqueeze(1)  # [B, T, H] * [B, 1, H]
        return states, final

    def map_lstm_from(self, lm: LSTMGenerator) -> None:
        """Embedding, encoder and decoder LSTMs <- the language model's."""
        with torch.no_grad():
            self.embedding.weight.copy_(lm.embedding.weight)
        copy_lstm(self.encoder, lm.lstm)
        copy_lstm(self.decoder, lm.lstm)


# --------------------------------------------------------------------------- generator
@dataclass
class MaskGANGeneratorConfig:
    """The generator of a MaskGAN run (``algorithm = "maskgan"`` builds it from the ``[generator]`` LSTM's
    sizes; ``generator.kind = "maskgan"`` also works on its own, e.g. for another algorithm)."""

    kind: str = "maskgan"
    emb_dim: int = 32
    hidden_dim: int = 32
    init_std: float = 0.1
    tie_softmax: bool = False
    """Softmax weights = the embedding (needs ``emb_dim == hidden_dim``)."""
    vd_keep_prob: float = 1.0
    """Variational dropout while training: the probability of keeping a unit (1: none; see the module docstring)."""

    def validate(self) -> None:
        positive(self, "emb_dim", "hidden_dim", "init_std")
        in_range(self, "vd_keep_prob", 0, 1, low_open=True)
        if self.tie_softmax and self.emb_dim != self.hidden_dim:
            raise ConfigError("tie_softmax", f"needs emb_dim == hidden_dim (got {self.emb_dim} and "
                                             f"{self.hidden_dim}); set tie_softmax = false")


@register("generator", "maskgan", MaskGANGeneratorConfig)
class MaskGANGenerator(SequenceGenerator, _Seq2Seq):
    """The in-filling seq2seq generator plus its pretraining LM (see the module docstring)."""

    capabilities = frozenset({"infilling"})
    """Not a language model of its own: ``algorithm = "maskgan"`` builds it around the ``[generator]`` LSTM."""

    unused_parameters = True
    """Each stage trains part of it (the LM, then the seq2seq): DDP must look for unused parameters."""

    def __init__(self, vocab_size: int, seq_len: int, start_token: int = 0, eos_token: int | None = None,
                 pad_token: int = 0, emb_dim: int = 32, hidden_dim: int = 32, tie_softmax: bool = False,
                 init_std: float = 0.1, lm: LSTMGenerator | None = None, vd_keep_prob: float = 1.0) -> None:
        super().__init__(vocab_size, seq_len, start_token, eos_token, pad_token)
        if tie_softmax and emb_dim != hidden_dim:
            raise ValueError(f"tie_softmax needs emb_dim == hidden_dim, got {emb_dim} and {hidden_dim}")
        if lm is None:
            lm = LSTMGenerator(vocab_size, emb_dim, hidden_dim, seq_len, start_token, init_std, eos_token, pad_token)
        if (lm.emb_dim, lm.hidden_dim, lm.vocab_size) != (emb_dim, hidden_dim, vocab_size):
            raise ValueError("the language model's sizes differ from the MaskGAN generator's")
        self.lm = lm
        self.emb_dim, self.hidden_dim, self.tie_softmax = emb_dim, hidden_dim, tie_softmax
        self._build(vocab_size, emb_dim, hidden_dim, vd_keep_prob)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.proj = None if tie_softmax else nn.Linear(hidden_dim, vocab_size, bias=False)
        self.register_buffer("infilling", torch.zeros(1, dtype=torch.long))
        # In-filling keeps the real sequence's length: a masked position (always before EOS) never gets EOS.
        no_eos = torch.zeros(vocab_size)
        if eos_token is not None:
            no_eos[eos_token] = float("-inf")
        self.register_buffer("fill_bias", no_eos, persistent=False)
        # Variable-length text: log P(EOS at position t), t in [0, T), of the training sequences (set_lengths).
        self.register_buffer("length_logp", torch.zeros(seq_len))
        _init_(self, init_std, skip="lm.")

    @classmethod
    def from_config(cls, cfg: MaskGANGeneratorConfig, lm: LSTMGenerator | None = None,
                    **sizes: Any) -> MaskGANGenerator:
        return cls(emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden_dim, tie_softmax=cfg.tie_softmax,
                   init_std=cfg.init_std, lm=lm, vd_keep_prob=cfg.vd_keep_prob, **sizes)

    def config(self) -> dict[str, Any]:
        return {**self.special_tokens(), "emb_dim": self.emb_dim, "hidden_dim": self.hidden_dim,
                "tie_softmax": self.tie_softmax, "vd_keep_prob": self.vd_keep_prob}

    def state_floats(self) -> int:
        """Three LSTMs (the LM, the encoder, the decoder) and the attention over every encoder position."""
        return 3 * (self.emb_dim + 6 * self.hidden_dim) + self.seq_len + 2 * self.hidden_dim

    # ----------------------------------------------------------------- LM -> MaskGAN
    def map_from_lm(self) -> None:
        """Embedding, encoder and decoder LSTMs, softmax <- the pretraining LM; the attention's output map
        ``W_c`` <- 0, so that MaskMLE starts from the LM's next-token distribution (given the decoder's initial
        state) instead of a random perturbation of it (``W_a`` and ``<missing>`` keep their initialisation).
        Tied softmax: the LM's output bias only (its weights are the embedding)."""
        self.map_lstm_from(self.lm)
        with torch.no_grad():
            self.attention.combine.weight.zero_()
            self.out_bias.copy_(self.lm.proj.bias)
            if self.proj is not None:
                self.proj.weight.copy_(self.lm.proj.weight)

    @property
    def pretrained_lm(self) -> LSTMGenerator:
        """The wrapped language model: ``[init] generator`` loads an MLE run's generator into it."""
        return self.lm

    def set_infilling(self, on: bool) -> None:
        """Make the in-filler (True) or the LM (False) the model behind the SequenceGenerator API."""
        self.infilling.fill_(int(on))

    def set_lengths(self, seqs: torch.Tensor, prior: float = 0.5) -> None:
        """Variable-length text: ``length_logp`` <- the distribution of the EOS position in ``seqs [N, T]``, with
        ``prior`` added to every count of positions 1..T-1 (an empty sequence, EOS at 0, keeps probability 0)."""
        if not self.variable_length:
            return
        has_eos = (seqs == self.eos_token).any(dim=1)  # [N]
        first = (seqs[has_eos] == self.eos_token).int().argmax(dim=1)  # [N'] position of the first EOS
        counts = torch.bincount(first.cpu(), minlength=self.seq_len).double() + prior  # [T]
        counts[0] -= prior
        self.length_logp.copy_((counts / counts.sum()).log())

    def length_conditional(self) -> bool:
        """Is the unconditional model ``P(L) P(x_1..x_L | L)``? (The in-filler of variable-length text: it was
        trained with EOS always present, so it draws the length first and fills the L tokens before it.)"""
        return bool(self.infilling) and self.variable_length

    # ----------------------------------------------------------------- the in-filler
    def output_logits(self, hidden: torch.Tensor, enc: torch.Tensor, filling: bool = False,
                      drop: LSTMDropout | None = None) -> torch.Tensor:
        """Decoder states ``[B, H]`` or ``[B, L, H]`` attending over ``enc [B, T, H]`` -> logits ``[..., V]``
        (``filling``: EOS banned too, variable-length text; ``drop``: the decoder's output mask multiplies the
        attention's output)."""
        out = self.attention(hidden, enc)
        if drop is not None:
            out = out * (drop.outputs if out.dim() == 2 else drop.outputs.unsqueeze(1))  # [B, (L,) H]
        weight = self.embedding.weight if self.proj is None else self.proj.weight
        return F.linear(out, weight, self.out_bias + self.logit_bias + (self.fill_bias if filling else 0.0))

    def keep_structure(self, seqs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Variable-length text: EOS and the padding after it are always present (a fill keeps the length)."""
        if not self.variable_length:
            return present
        return present | ~self.token_mask(seqs) | (seqs == self.eos_token)

    def teacher_forced(self, seqs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, T, V]`` of every position given the masked context and the real previous tokens (EOS
        banned: for the masked positions, which the loss reads)."""
        enc_drop, dec_drop = self.dropout(seqs.shape[0])
        enc, (h, c) = self.encode(seqs, present, enc_drop)
        hidden, _ = run_lstm(self.decoder, self.embedding(self.inputs(seqs)), (h, c), dec_drop)  # [B, T, H]
        return self.output_logits(hidden, enc, filling=True, drop=dec_drop)

    def fill(self, seqs: torch.Tensor, present: torch.Tensor, temperature: float = 1.0,
             generator: torch.Generator | None = None, method: str = DEFAULT_SAMPLER
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill the masked positions of ``seqs [B, T]`` by sampling left to right.

        Returns ``filled [B, T]`` (the real token where ``present``) and ``log_probs [B, T]``: ``log G(x_t)`` of
        the sampled token at masked positions (with gradient), exactly 0 at present ones (no gradient).
        Batched over rows; a Python loop over positions only.
        """
        enc_drop, dec_drop = self.dropout(seqs.shape[0])
        enc, (h, c) = self.encode(seqs, present, enc_drop)
        h, c = h[0], c[0]
        token = seqs.new_full((seqs.shape[0],), self.start_token)
        tokens, lps = [], []
        for t in range(seqs.shape[1]):
            h, c = lstm_step(self.decoder, self.embedding(token), (h, c), dec_drop)
            logp = torch.log_softmax(self.output_logits(h, enc, filling=True, drop=dec_drop), dim=-1)  # [B, V]
            sampled = sample_categorical(logp.detach(), temperature, generator, method)
            token = torch.where(present[:, t], seqs[:, t], sampled)
            lp = logp.gather(1, token.unsqueeze(1)).squeeze(1)
            lps.append(torch.where(present[:, t], torch.zeros_like(lp), lp))
            tokens.append(token)
        return torch.stack(tokens, dim=1), torch.stack(lps, dim=1)

    def missing_context(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder states and final ``(h, c)`` of an all-``<missing>`` input, for ``batch`` rows."""
        emb = self.missing.expand(1, self.seq_len, self.emb_dim)
        enc, (h, c) = self.encoder(emb)  # one row, then shared by all
        return (enc.expand(batch, -1, -1), h[0].expand(batch, -1).contiguous(),
                c[0].expand(batch, -1).contiguous())

    # ----------------------------------------------------------------- SequenceGenerator API
    def sample_batch(self, rows: int, length: int, temperature: float = 1.0,
                     generator: torch.Generator | None = None, method: str = DEFAULT_SAMPLER) -> torch.Tensor:
        """``[rows, length]`` samples. Length-conditional in-filler (:meth:`length_conditional`): each row's EOS
        position is drawn from ``length_logp``, then every position before it is filled (:meth:`fill`);
        otherwise the LM's or the all-``<missing>`` in-filler's left-to-right sampling."""
        if not self.length_conditional() or length != self.seq_len:
            return super().sample_batch(rows, length, temperature, generator, method)
        pos = torch.arange(self.seq_len, device=self.device)  # [T]
        eos_at = torch.multinomial(self.length_logp.exp(), rows, replacement=True, generator=generator)  # [R]
        present = pos >= eos_at.unsqueeze(1)  # [R, T]: EOS and the padding after it
        seqs = torch.where(pos == eos_at.unsqueeze(1), self.eos_token, self.pad_token)  # [R, T]
        return self.fill(seqs, present, temperature, generator, method)[0]

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        if not bool(self.infilling):
            return self.lm(seqs)
        if self.variable_length:
            return self._length_conditional_logits(seqs)
        enc, h, c = self.missing_context(seqs.shape[0])
        hidden, _ = self.decoder(self.embedding(self.inputs(seqs)), (h.unsqueeze(0), c.unsqueeze(0)))
        return self.output_logits(hidden, enc)

    def _length_conditional_logits(self, seqs: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, T, V]`` whose log-softmax at ``seqs [B, T]`` gives ``log P(L) + sum_t log P(x_t | x_<t, L)``:
        the in-filler's (EOS banned) before EOS, and at the EOS position a row whose EOS entry is
        ``log P(EOS at t)`` and whose other V - 1 entries share the rest (already normalised)."""
        present = self.keep_structure(seqs, torch.zeros_like(seqs, dtype=torch.bool))  # [B, T]
        logits = self.teacher_forced(seqs, present)  # [B, T, V]
        lp = self.length_logp.to(logits.dtype)  # [T]
        rest = torch.log1p(-lp.exp()) - math.log(self.vocab_size - 1)  # [T]
        rows = rest.unsqueeze(1).expand(-1, self.vocab_size).clone()  # [T, V]
        rows[:, self.eos_token] = lp
        return torch.where((seqs == self.eos_token).unsqueeze(-1), rows.unsqueeze(0), logits)  # [B, T, V]

    def initial_state(self, batch: int):
        if not bool(self.infilling):
            return self.lm.initial_state(batch)
        enc, h, c = self.missing_context(batch)
        start = torch.full((batch,), self.start_token, dtype=torch.long, device=self.device)
        return self.advance(start, (h, c, enc))

    def advance(self, tokens: torch.Tensor, state):
        if len(state) == 2:
            return self.lm.advance(tokens, state)
        h, c, enc = state
        h, c = lstm_step(self.decoder, self.embedding(tokens), (h, c))
        return h, c, enc

    def logits(self, state) -> torch.Tensor:
        if len(state) == 2:
            return self.lm.logits(state)
        return self.output_logits(state[0], state[2])


# --------------------------------------------------------------------------- discriminator and critic
@dataclass
class MaskGANDiscriminatorConfig:
    """The discriminator of a MaskGAN run (built by ``algorithm = "maskgan"`` with the generator's sizes)."""

    kind: str = "maskgan"
    emb_dim: int = 32
    hidden_dim: int = 32
    init_std: float = 0.1
    vd_keep_prob: float = 1.0
    """Variational dropout while training (see the module docstring; 1: none)."""

    def validate(self) -> None:
        positive(self, "emb_dim", "hidden_dim", "init_std")
        in_range(self, "vd_keep_prob", 0, 1, low_open=True)


@register(DISCRIMINATOR_ROLE, "maskgan", MaskGANDiscriminatorConfig)
class MaskGANDiscriminator(_Seq2Seq):
    """Per-token real/fake logits of a filled sequence given its masked real context, and the critic head."""

    def __init__(self, vocab_size: int, emb_dim: int = 32, hidden_dim: int = 32, start_token: int = 0,
                 init_std: float = 0.1, vd_keep_prob: float = 1.0) -> None:
        super().__init__()
        self.vocab_size, self.emb_dim, self.hidden_dim, self.start_token = vocab_size, emb_dim, hidden_dim, start_token
        self._build(vocab_size, emb_dim, hidden_dim, vd_keep_prob)
        self.head = nn.Linear(hidden_dim, 1)
        self.critic = nn.Linear(hidden_dim, 1)
        _init_(self, init_std)

    @classmethod
    def from_config(cls, cfg: MaskGANDiscriminatorConfig, **sizes: Any) -> MaskGANDiscriminator:
        return cls(emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden_dim, init_std=cfg.init_std,
                   vd_keep_prob=cfg.vd_keep_prob, **sizes)

    def config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "emb_dim": self.emb_dim, "hidden_dim": self.hidden_dim,
                "start_token": self.start_token, "vd_keep_prob": self.vd_keep_prob}

    def activation_bytes(self, batch: int, seq_len: int = 1) -> int:
        """float32 bytes a batch of ``batch`` sequences of ``seq_len`` keeps for backward (its length is the
        data's, not part of the model): two LSTMs and the attention, per position."""
        return 4 * batch * seq_len * (2 * (self.emb_dim + 6 * self.hidden_dim) + seq_len + 4 * self.hidden_dim)

    def map_from_infiller(self, gen: MaskGANGenerator) -> None:
        """Embedding, ``<missing>`` vector, encoder and decoder LSTMs and attention (``W_a``, ``W_c``) <- the
        in-filler's (the released code's ``dis_seq2seq_vd`` variable mapping from the MaskMLE checkpoint at the
        start of its GAN mode). The real/fake ``head`` and the ``critic`` keep their own initialisation."""
        if (gen.emb_dim, gen.hidden_dim, gen.vocab_size) != (self.emb_dim, self.hidden_dim, self.vocab_size):
            raise ValueError("the in-filler's sizes differ from the discriminator's")
        with torch.no_grad():
            for name in ("embedding", "encoder", "decoder", "attention"):
                for dst, src in zip(getattr(self, name).parameters(), getattr(gen, name).parameters(), strict=True):
                    dst.copy_(src)
            self.missing.copy_(gen.missing)

    def shared_parameters(self) -> list[str]:
        """Names of the parameters :meth:`map_from_infiller` copies (everything but ``head`` and ``critic``)."""
        return [n for n, _ in self.named_parameters() if not n.startswith(("head.", "critic."))]

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Everything but the critic head."""
        return [p for n, p in self.named_parameters() if not n.startswith("critic.")]

    def forward(self, filled: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``filled [B, T]`` (real where ``present``) -> logits ``[B, T]`` and decoder outputs ``[B, T+1, H]``.

        The decoder reads the start token then ``filled``; output ``s`` has read ``filled[:, :s]``. Logit t comes
        from output ``t + 1`` (it has read token t); the critic's value of position t from output ``t`` (it has
        not: a baseline independent of the action at t)."""
        enc_drop, dec_drop = self.dropout(filled.shape[0])
        enc, (h, c) = self.encode(filled, present, enc_drop)
        start = filled.new_full((filled.shape[0], 1), self.start_token)
        hidden, _ = run_lstm(self.decoder, self.embedding(torch.cat([start, filled], dim=1)), (h, c),
                             dec_drop)  # [B, T+1, H]
        out = self.attention(hidden, enc)
        if dec_drop is not None:
            out = out * dec_drop.outputs.unsqueeze(1)  # [B, T+1, H] * [B, 1, H]
        return self.head(out[:, 1:]).squeeze(-1), out

    def values(self, out: torch.Tensor, detach: bool = True) -> torch.Tensor:
        """Critic values ``[B, T]`` from :meth:`forward`'s outputs (``detach``: only the head learns)."""
        out = out[:, :-1]
        return self.critic(out.detach() if detach else out).squeeze(-1)
