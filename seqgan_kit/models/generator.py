"""What every generator kind shares: the sequence conventions, masking, likelihoods and batched sampling.

Conventions used throughout seqgan-kit:

- A sequence batch is ``[B, T]`` int64 token ids. Sequences start from an implicit ``start_token`` that is
  *not* part of the tensor: the input at position 0 is ``start_token``, at position t > 0 it is ``y[t-1]``.
- A generator is a left-to-right model with a recurrent *state*. The state *at position t* is the one after
  consuming the inputs up to position t; :meth:`SequenceGenerator.logits` at that state gives the logits of
  ``y[t]``.
- Variable-length text (``eos_token`` set): a sequence ends with its first ``eos_token``; every later position
  holds ``pad_token``. Sampling writes PAD after EOS, the model never produces PAD or the start token (their
  logits are -inf), the last position of a sequence is always EOS (a sample never runs past ``seq_len``
  positions), and :meth:`SequenceGenerator.token_mask` marks the positions up to and including EOS. Without
  ``eos_token`` (the synthetic task) every sequence has exactly ``seq_len`` tokens and every position counts.

A generator kind subclasses :class:`SequenceGenerator`, implements ``forward`` (teacher forcing),
``initial_state``, ``advance`` and ``logits`` (the incremental API), ``config`` and ``from_config``, and is
registered with :func:`seqgan_kit.models.registry.register`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .sampling import DEFAULT_SAMPLER, sample_categorical

State = Any
"""A generator kind's recurrent state; for the LSTM a pair ``(h, c)`` of ``[B, H]`` tensors."""


class SequenceGenerator(nn.Module):
    """Base class of generator kinds: token conventions, masks, log-likelihoods and sampling."""

    kind = ""
    capabilities: frozenset[str] = frozenset({"language_model", "gumbel"})
    """What algorithms may ask of a generator kind (:data:`seqgan_kit.models.registry.CAPABILITIES`)."""

    def __init__(self, vocab_size: int, seq_len: int, start_token: int = 0, eos_token: int | None = None,
                 pad_token: int = 0, banned_tokens: Sequence[int] = ()) -> None:
        super().__init__()
        banned_tokens = tuple(int(t) for t in banned_tokens)
        for name, token in (("start_token", start_token), ("eos_token", eos_token), ("pad_token", pad_token),
                            *(("banned_tokens", t) for t in banned_tokens)):
            if token is not None and not 0 <= token < vocab_size:
                raise ValueError(f"{name} {token} outside the vocabulary of size {vocab_size}")
        if eos_token is not None and banned_tokens:
            raise ValueError("banned_tokens is for fixed-length models (no eos_token)")
        if pad_token in banned_tokens:
            raise ValueError(f"pad_token {pad_token} cannot be banned: a fixed-length PAD model must emit it")
        if eos_token is not None and len({start_token, eos_token, pad_token}) != 3:
            raise ValueError("start_token, eos_token and pad_token must differ for variable-length text")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.start_token = start_token
        self.eos_token = eos_token
        self.pad_token = pad_token
        self.banned_tokens = banned_tokens
        # -inf on tokens the model may never emit (PAD and the start token, for variable-length text; the
        # banned_tokens of fixed-length PAD text).
        banned = torch.zeros(vocab_size)
        if eos_token is not None:
            banned[[pad_token, start_token]] = float("-inf")
        if banned_tokens:
            banned[list(banned_tokens)] = float("-inf")
        self.register_buffer("logit_bias", banned, persistent=False)  # [V]

    def special_tokens(self) -> dict[str, Any]:
        """The token arguments every kind's ``config()`` includes (``banned_tokens`` only when there are some, so
        an EOS model's config is what it always was)."""
        tokens = {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "start_token": self.start_token,
                  "eos_token": self.eos_token, "pad_token": self.pad_token}
        if self.banned_tokens:
            tokens["banned_tokens"] = list(self.banned_tokens)
        return tokens

    @property
    def device(self) -> torch.device:
        return self.logit_bias.device

    # ----------------------------------------------------------------- what a kind implements
    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: ``seqs [B, T]`` -> ``[B, T, V]`` (position t predicts ``seqs[:, t]``)."""
        raise NotImplementedError

    def initial_state(self, batch: int) -> State:
        """State at position 0 (after the start token): its logits give the distribution of ``y[0]``."""
        raise NotImplementedError

    def advance(self, tokens: torch.Tensor, state: State) -> State:
        """Feed ``tokens [B]`` from ``state``; return the next state."""
        raise NotImplementedError

    def logits(self, state: State) -> torch.Tensor:
        """Next-token logits ``[B, V]`` at ``state`` (banned tokens at -inf)."""
        raise NotImplementedError

    def state_batch(self, state: State) -> int:
        """Rows in ``state`` (a tensor, or a tuple of tensors whose first is ``[B, ...]``)."""
        return (state[0] if isinstance(state, tuple) else state).shape[0]

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- shared: inputs and masks
    def activation_bytes(self, batch: int) -> int:
        """float32 bytes one teacher-forced training batch ``[batch, seq_len]`` keeps for backward: the logits,
        their log-softmax and its gradient (``3 V`` a position) plus the kind's :meth:`state_floats`."""
        return 4 * batch * self.seq_len * (3 * self.vocab_size + self.state_floats())

    def state_floats(self) -> int:
        """Floats a position of the kind's recurrent computation keeps for backward (0 if not stated)."""
        return 0

    def inputs(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` targets -> ``[B, T]`` inputs: the start token, then the targets shifted right by one."""
        if seqs.dim() != 2:
            raise ValueError(f"expected a [B, T] batch of token ids, got shape {tuple(seqs.shape)}")
        if seqs.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"expected integer token ids, got dtype {seqs.dtype}")
        start = seqs.new_full((seqs.shape[0], 1), self.start_token)
        return torch.cat([start, seqs[:, :-1]], dim=1)

    @property
    def variable_length(self) -> bool:
        """True for text models whose sequences end at ``eos_token`` (then padded with ``pad_token``)."""
        return self.eos_token is not None

    def token_mask(self, seqs: torch.Tensor) -> torch.Tensor:
        """Positions that belong to the sequence: ``[B, T]`` ids -> ``[B, T]`` bool (all true without EOS).

        With ``eos_token`` set these are the positions up to and including the first EOS (PAD only follows
        EOS, so this is ``seqs != pad_token``).
        """
        if not self.variable_length:
            return torch.ones_like(seqs, dtype=torch.bool)
        return seqs != self.pad_token

    def eos_seen(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, T]`` bool: does ``seqs[:, :t+1]`` contain EOS (variable-length models only)?"""
        return (seqs == self.eos_token).long().cummax(dim=1).values.bool()

    # ----------------------------------------------------------------- shared: likelihoods
    def log_probs(self, seqs: torch.Tensor) -> torch.Tensor:
        """Per-token log-probabilities ``log G(y_t | y_<t)``: ``[B, T]`` ids -> ``[B, T]`` floats.

        Padding positions (after EOS) hold 0, so sums over a row are the sequence's log-likelihood.
        """
        logp = torch.log_softmax(self(seqs), dim=-1, dtype=torch.float32)  # [B, T, V], float32 under any autocast
        lp = logp.gather(-1, seqs.long().unsqueeze(-1)).squeeze(-1)  # [B, T]
        if self.variable_length:
            lp = lp.masked_fill(~self.token_mask(seqs), 0.0)  # PAD has logit -inf: never multiply it by 0
        return lp

    def nll(self, seqs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean per-token negative log-likelihood in nats over the tokens of the sequences (padding excluded)
        and where the optional ``mask [B, T]`` is true."""
        lp = self.log_probs(seqs)  # [B, T]
        keep = self.token_mask(seqs)
        if mask is not None:
            keep = keep & mask.bool()
        keep = keep.to(lp.dtype)
        return -(lp * keep).sum() / keep.sum().clamp(min=1)

    # ----------------------------------------------------------------- shared: sampling
    def finish(self, tokens: torch.Tensor, done: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the end-of-sequence rule to freshly sampled ``tokens [B]``.

        ``done [B]`` bool marks rows that already emitted EOS: their token becomes PAD. Returns the tokens and
        the updated ``done`` (``None`` in, ``None`` out, for fixed-length models).
        """
        if done is None or not self.variable_length:
            return tokens, done
        tokens = tokens.masked_fill(done, self.pad_token)
        return tokens, done | (tokens == self.eos_token)

    def draw(self, state: State, position: int, temperature: float = 1.0, generator: torch.Generator | None = None,
             method: str = DEFAULT_SAMPLER) -> torch.Tensor:
        """The tokens ``[B]`` at absolute ``position`` from ``state``: a sample of the next-token distribution,
        or EOS without a draw at the last position of a variable-length model."""
        if self.variable_length and position == self.seq_len - 1:
            return torch.full((self.state_batch(state),), self.eos_token, dtype=torch.long, device=self.device)
        if method == "inverse_cdf" and temperature != 0:  # the sampler adds the bias inside its one pass
            logits, bias = self.logits_and_bias(state)
            return sample_categorical(logits, temperature, generator, method, bias=bias)
        return sample_categorical(self.logits(state), temperature, generator, method)

    def logits_and_bias(self, state: State) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`logits` as ``(x [B, V], bias [V] or None)`` with ``x + bias == logits(state)`` (up to
        rounding): a kind whose logits end in a bias add returns it separately, so that the ``inverse_cdf``
        sampler adds it inside its pass instead of a pass of its own. Default: ``(logits(state), None)``."""
        return self.logits(state), None

    @torch.no_grad()
    def generate(
        self,
        state: State,
        steps: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        method: str = DEFAULT_SAMPLER,
        done: torch.Tensor | None = None,
        position: int | None = None,
    ) -> torch.Tensor:
        """Sample ``steps`` tokens starting from ``state`` (a state whose logits give the next token).

        Returns ``[B, steps]`` int64. ``position`` is the absolute position of the first token (default:
        ``seq_len - steps``, a continuation that runs to the end). For variable-length models ``done [B]``
        (default: all false) marks rows that have already ended; rows write PAD after their EOS, and sampling
        stops early once every row has ended. The state after the last token is not computed.
        """
        b = self.state_batch(state)
        start = self.seq_len - steps if position is None else position
        if self.variable_length and done is None:
            done = torch.zeros(b, dtype=torch.bool, device=self.device)
        out = torch.full((b, steps), self.pad_token, dtype=torch.long, device=self.device)  # [B, steps]
        for s in range(steps):
            token, done = self.finish(self.draw(state, start + s, temperature, generator, method), done)
            out[:, s] = token
            if done is not None and bool(done.all()):
                break  # the rest stays PAD
            if s + 1 < steps:
                state = self.advance(token, state)
        return out

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        batch_size: int = 4096,
        length: int | None = None,
        method: str = DEFAULT_SAMPLER,
    ) -> torch.Tensor:
        """Sample ``n`` sequences of ``length`` (default ``seq_len``) tokens: ``[n, length]`` int64.

        Sampling is batched over all sequences (in chunks of ``batch_size`` rows to bound memory).
        ``temperature = 0`` gives greedy decoding.
        """
        length = self.seq_len if length is None else length
        chunks = [self.sample_batch(min(batch_size, n - lo), length, temperature, generator, method)
                  for lo in range(0, n, batch_size)]
        if not chunks:
            return torch.empty(0, length, dtype=torch.long, device=self.device)
        return torch.cat(chunks, dim=0)

    def sample_batch(self, rows: int, length: int, temperature: float = 1.0,
                     generator: torch.Generator | None = None, method: str = DEFAULT_SAMPLER) -> torch.Tensor:
        """One batch of :meth:`sample`: ``[rows, length]`` int64, left to right from the initial state."""
        return self.generate(self.initial_state(rows), length, temperature, generator, method, position=0)

    # ----------------------------------------------------------------- shared: Gumbel-softmax relaxation
    def gumbel_rollout(self, n: int, beta: float, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``n`` sequences with the Gumbel-softmax relaxation (GSGAN / RelGAN), keeping the graph.

        At each position, with ``o_t`` the logits and ``g_t`` Gumbel noise: the token is
        ``argmax(o_t + g_t)`` (an exact sample of ``softmax(o_t)``, fed back as the next input without
        gradient), and the relaxed token is ``softmax(beta * (o_t + g_t))``, differentiable in every parameter
        through ``o_t``. Batched over rows; a Python loop over the positions only.

        Returns ``hard [n, T]`` int64 and ``soft [n, T, V]`` float32 (noise, its addition and the softmax are
        float32 under any precision, :func:`seqgan_kit.models.gumbel.gumbel_perturb`). Variable-length models:
        after a row's EOS the hard tokens are PAD and the soft rows are all zero (what the discriminators read as
        padding); the last position is a hard one-hot EOS (no draw, no gradient), as in :meth:`draw`.
        """
        from .gumbel import gumbel_perturb

        t_max, v = self.seq_len, self.vocab_size
        state = self.initial_state(n)
        done = torch.zeros(n, dtype=torch.bool, device=self.device) if self.variable_length else None
        hard_steps, soft_steps = [], []
        for t in range(t_max):
            if self.variable_length and t == t_max - 1:
                token = torch.full((n,), self.eos_token, dtype=torch.long, device=self.device)
                soft = torch.nn.functional.one_hot(token, v).to(soft_steps[0].dtype if soft_steps else torch.float32)
            else:
                logits = self.logits(state)  # [n, V], bfloat16 under a bf16 autocast
                perturbed = gumbel_perturb(logits, generator)  # [n, V] float32
                token = perturbed.detach().argmax(dim=-1)  # [n]
                soft = torch.softmax(beta * perturbed, dim=-1, dtype=torch.float32)  # [n, V]
            if done is not None:
                soft = soft * (~done).unsqueeze(1).to(soft.dtype)  # rows past their EOS: zero (padding)
            token, done = self.finish(token, done)
            hard_steps.append(token)
            soft_steps.append(soft)
            if t + 1 < t_max:
                state = self.advance(token, state)
        return torch.stack(hard_steps, dim=1), torch.stack(soft_steps, dim=1)
