"""The LSTM generator: token embedding -> one LSTM layer -> linear projection to the vocabulary.

Conventions used throughout seqgan-kit:

- A sequence batch is ``[B, T]`` int64 token ids. Sequences start from an implicit ``start_token`` that is
  *not* part of the tensor: the input at position 0 is ``start_token``, at position t > 0 it is ``y[t-1]``.
- A recurrent state is a pair ``(h, c)`` of ``[B, H]`` tensors. The state *at position t* is the one after
  consuming the inputs up to position t; ``proj(h)`` at that state gives the logits for ``y[t]``.
- Variable-length text (``eos_token`` set): a sequence ends with its first ``eos_token``; every later position
  holds ``pad_token``. Sampling writes PAD after EOS, the model never produces PAD or the start token (their
  logits are -inf), and :meth:`Generator.token_mask` marks the positions up to and including EOS. A sequence
  that reaches the maximum length without EOS is simply cut there. Without ``eos_token`` (the synthetic task)
  every sequence has exactly ``max_len`` tokens and every position counts.

The same module (loaded with other weights) is the target-LSTM oracle, see :mod:`seqgan_kit.oracle`.
"""

from __future__ import annotations

import torch
from torch import nn

from .sampling import DEFAULT_SAMPLER, sample_categorical

State = tuple[torch.Tensor, torch.Tensor]


class Generator(nn.Module):
    """LSTM language model over a fixed vocabulary, with fast batched sampling.

    Paper settings (SeqGAN synthetic task): ``vocab_size=5000, emb_dim=32, hidden_dim=32, max_len=20,
    start_token=0`` and every parameter drawn from N(0, ``init_std`` = 0.1).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        max_len: int = 20,
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
        pad_token: int = 0,
    ) -> None:
        super().__init__()
        for name, token in (("start_token", start_token), ("eos_token", eos_token), ("pad_token", pad_token)):
            if token is not None and not 0 <= token < vocab_size:
                raise ValueError(f"{name} {token} outside the vocabulary of size {vocab_size}")
        if eos_token is not None and len({start_token, eos_token, pad_token}) != 3:
            raise ValueError("start_token, eos_token and pad_token must differ for variable-length text")
        self.vocab_size = vocab_size
        self.eos_token = eos_token
        self.pad_token = pad_token
        self.emb_dim = emb_dim
        self.hidden_dim = hidden_dim
        self.max_len = max_len
        self.start_token = start_token
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.proj = nn.Linear(hidden_dim, vocab_size)
        # -inf on tokens the model may never emit (PAD and the start token, for variable-length text).
        banned = torch.zeros(vocab_size)
        if eos_token is not None:
            banned[[pad_token, start_token]] = float("-inf")
        self.register_buffer("logit_bias", banned, persistent=False)  # [V]
        self.reset_parameters(init_std)

    def reset_parameters(self, std: float) -> None:
        """Every weight and bias ~ N(0, std); the LSTM's second bias (``bias_hh``) is zero so the gate
        bias has exactly that distribution, as in the original single-bias cell."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name == "lstm.bias_hh_l0":
                    p.zero_()
                else:
                    p.normal_(0.0, std)

    @property
    def device(self) -> torch.device:
        return self.proj.weight.device

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        return {
            "vocab_size": self.vocab_size,
            "emb_dim": self.emb_dim,
            "hidden_dim": self.hidden_dim,
            "max_len": self.max_len,
            "start_token": self.start_token,
            "eos_token": self.eos_token,
            "pad_token": self.pad_token,
        }

    # ----------------------------------------------------------------- teacher forcing
    def _inputs(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` targets -> ``[B, T]`` inputs: start token, then the targets shifted right by one."""
        start = seqs.new_full((seqs.shape[0], 1), self.start_token)
        return torch.cat([start, seqs[:, :-1]], dim=1)

    def _check_seqs(self, seqs: torch.Tensor) -> None:
        if seqs.dim() != 2:
            raise ValueError(f"expected a [B, T] batch of token ids, got shape {tuple(seqs.shape)}")
        if seqs.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"expected integer token ids, got dtype {seqs.dtype}")

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits. ``seqs [B, T]`` -> ``[B, T, V]`` (position t predicts ``seqs[:, t]``)."""
        self._check_seqs(seqs)
        emb = self.embedding(self._inputs(seqs))  # [B, T, E]
        hidden, _ = self.lstm(emb)  # [B, T, H]
        return self.proj(hidden) + self.logit_bias  # [B, T, V]

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

    def log_probs(self, seqs: torch.Tensor) -> torch.Tensor:
        """Per-token log-probabilities ``log G(y_t | y_<t)``: ``[B, T]`` ids -> ``[B, T]`` floats.

        Padding positions (after EOS) hold 0, so sums over a row are the sequence's log-likelihood.
        """
        logp = torch.log_softmax(self(seqs), dim=-1)  # [B, T, V]
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

    # ----------------------------------------------------------------- incremental API
    def zero_state(self, batch: int) -> State:
        """All-zero ``(h, c)``, each ``[batch, H]``, on the module's device."""
        z = torch.zeros(batch, self.hidden_dim, device=self.device, dtype=self.proj.weight.dtype)
        return z, z.clone()

    def advance(self, tokens: torch.Tensor, state: State) -> State:
        """Feed ``tokens [B]`` into the LSTM from ``state``; return the new ``(h, c)``, each ``[B, H]``."""
        lstm = self.lstm
        h, c = torch.lstm_cell(
            self.embedding(tokens), state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
        )
        return h, c

    def logits(self, state: State) -> torch.Tensor:
        """Next-token logits ``[B, V]`` at ``state``."""
        return self.proj(state[0]) + self.logit_bias

    def finish(self, tokens: torch.Tensor, done: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the end-of-sequence rule to freshly sampled ``tokens [B]``.

        ``done [B]`` bool marks rows that already emitted EOS: their token becomes PAD. Returns the tokens and
        the updated ``done`` (``None`` in, ``None`` out, for fixed-length models).
        """
        if done is None or not self.variable_length:
            return tokens, done
        tokens = tokens.masked_fill(done, self.pad_token)
        return tokens, done | (tokens == self.eos_token)

    def eos_seen(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, T]`` bool: does ``seqs[:, :t+1]`` contain EOS (variable-length models only)?"""
        return (seqs == self.eos_token).long().cummax(dim=1).values.bool()

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Feed ``tokens [B]`` and return the next-token logits ``[B, V]`` and the new state."""
        state = self.advance(tokens, state)
        return self.logits(state), state

    def initial_state(self, batch: int) -> State:
        """State at position 0 (after the start token): its logits give the distribution of ``y[0]``."""
        start = torch.full((batch,), self.start_token, dtype=torch.long, device=self.device)
        return self.advance(start, self.zero_state(batch))

    def prefix_states(self, seqs: torch.Tensor) -> State:
        """States at every position of a teacher-forced pass.

        ``seqs [B, T]`` -> ``(h, c)``, each ``[B, T, H]``; ``h[:, t]`` gives the logits of ``seqs[:, t]``,
        so a continuation of the prefix ``seqs[:, :t]`` starts from ``(h[:, t], c[:, t])``.
        """
        self._check_seqs(seqs)
        inputs = self._inputs(seqs)
        state = self.zero_state(seqs.shape[0])
        hs, cs = [], []
        for t in range(seqs.shape[1]):
            state = self.advance(inputs[:, t], state)
            hs.append(state[0])
            cs.append(state[1])
        return torch.stack(hs, dim=1), torch.stack(cs, dim=1)

    @torch.no_grad()
    def generate(
        self,
        state: State,
        steps: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        method: str = DEFAULT_SAMPLER,
        done: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample ``steps`` tokens starting from ``state`` (a state whose logits give the next token).

        Returns ``[B, steps]`` int64. The state after the last token is not needed, so it is not computed.
        For variable-length models ``done [B]`` (default: all false) marks rows that have already ended;
        rows write PAD after their EOS, and sampling stops early once every row has ended.
        """
        b = state[0].shape[0]
        if self.variable_length and done is None:
            done = torch.zeros(b, dtype=torch.bool, device=self.device)
        out = torch.full((b, steps), self.pad_token, dtype=torch.long, device=self.device)  # [B, steps]
        for s in range(steps):
            token = sample_categorical(self.logits(state), temperature, generator, method)  # [B]
            token, done = self.finish(token, done)
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
        """Sample ``n`` sequences of ``length`` (default ``max_len``) tokens: ``[n, length]`` int64.

        Sampling is batched over all sequences (in chunks of ``batch_size`` rows to bound memory).
        ``temperature = 0`` gives greedy decoding.
        """
        length = self.max_len if length is None else length
        chunks = []
        for lo in range(0, n, batch_size):
            rows = min(batch_size, n - lo)
            chunks.append(self.generate(self.initial_state(rows), length, temperature, generator, method))
        if not chunks:
            return torch.empty(0, length, dtype=torch.long, device=self.device)
        return torch.cat(chunks, dim=0)
