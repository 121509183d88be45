"""The LSTM generator (``generator.kind = "lstm"``): token embedding -> one LSTM layer -> linear projection.

The same module (loaded with other weights) is the target-LSTM oracle, see :mod:`seqgan_kit.models.oracle`.
Sequence conventions (start token, EOS/PAD, states at positions) are those of
:mod:`seqgan_kit.models.generator`; the LSTM state is a pair ``(h, c)`` of ``[B, H]`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import positive
from .generator import SequenceGenerator
from .registry import register

LSTMState = tuple[torch.Tensor, torch.Tensor]


@dataclass
class LSTMGeneratorConfig:
    """The ``[generator]`` table of the LSTM generator (paper: emb 32, hidden 32, every parameter ~ N(0, 0.1))."""

    kind: str = "lstm"
    emb_dim: int = 32
    hidden_dim: int = 32
    init_std: float = 0.1

    def validate(self) -> None:
        positive(self, "emb_dim", "hidden_dim", "init_std")


@register("generator", "lstm", LSTMGeneratorConfig)
class LSTMGenerator(SequenceGenerator):
    """LSTM language model over a fixed vocabulary, with fast batched sampling.

    Paper settings (SeqGAN synthetic task): ``vocab_size=5000, emb_dim=32, hidden_dim=32, seq_len=20,
    start_token=0`` and every parameter drawn from N(0, ``init_std`` = 0.1).
    """

    capabilities = SequenceGenerator.capabilities | {"prefix_states", "lstm_weights", "soft_argmax"}

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        seq_len: int = 20,
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
        pad_token: int = 0,
        banned_tokens: Sequence[int] = (),
    ) -> None:
        super().__init__(vocab_size, seq_len, start_token, eos_token, pad_token, banned_tokens)
        self.emb_dim = emb_dim
        self.hidden_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.proj = nn.Linear(hidden_dim, vocab_size)
        self.reset_parameters(init_std)

    @classmethod
    def from_config(cls, cfg: LSTMGeneratorConfig, **sizes: Any) -> LSTMGenerator:
        """Build from the ``[generator]`` table; ``sizes``: vocab_size, seq_len and the special tokens."""
        return cls(emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden_dim, init_std=cfg.init_std, **sizes)

    def reset_parameters(self, std: float) -> None:
        """Every weight and bias ~ N(0, std); the LSTM's second bias (``bias_hh``) is zero so the gate
        bias has exactly that distribution, as in the original single-bias cell."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name == "lstm.bias_hh_l0":
                    p.zero_()
                else:
                    p.normal_(0.0, std)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        return {**self.special_tokens(), "emb_dim": self.emb_dim, "hidden_dim": self.hidden_dim}

    def state_floats(self) -> int:
        """A position keeps its embedding, four gates, the cell and the hidden state: ``E + 6 H``."""
        return self.emb_dim + 6 * self.hidden_dim

    # ----------------------------------------------------------------- teacher forcing
    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits. ``seqs [B, T]`` -> ``[B, T, V]`` (position t predicts ``seqs[:, t]``)."""
        emb = self.embedding(self.inputs(seqs))  # [B, T, E]
        if torch.is_autocast_enabled(emb.device.type):  # a bf16 run: see _lstm_hoisted
            hidden = self._lstm_hoisted(emb)  # [B, T, H]
        else:
            hidden, _ = self.lstm(emb)  # [B, T, H]
        return self._project(hidden)  # [B, T, V]

    def _lstm_hoisted(self, emb: torch.Tensor) -> torch.Tensor:
        """The LSTM layer as one input GEMM over the whole sequence plus one recurrent GEMM per step:
        ``emb [B, T, E]`` -> hidden states ``[B, T, H]`` (float32).

        The path of a bfloat16 run: the two GEMMs run in the autocast's dtype, the gates and the cell state in
        float32. ``nn.LSTM`` has no bfloat16 kernel on a CPU without AVX-512 (oneDNN refuses the primitive), and
        where it has one it re-casts at every step. Same function as ``self.lstm`` (gate order i, f, g, o), up to
        rounding (``tests/test_precision.py``).
        """
        lstm = self.lstm
        b, t, _ = emb.shape
        gx = F.linear(emb, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)  # [B, T, 4H]: one GEMM
        h = emb.new_zeros(b, self.hidden_dim, dtype=torch.float32)  # [B, H]
        c = torch.zeros_like(h)  # [B, H]
        out = []
        for s in range(t):
            gates = (gx[:, s] + F.linear(h, lstm.weight_hh_l0)).float()  # [B, 4H]
            i, f, g, o = gates.chunk(4, dim=1)  # each [B, H]
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)  # T x [B, H] -> [B, T, H]

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H]`` -> logits ``[..., V]``; the banned-token bias is folded into the projection's bias (one
        ``[V]`` add instead of a pass over ``[..., V]``)."""
        if not (self.variable_length or self.banned_tokens):  # nothing is banned: the plain projection
            return self.proj(hidden)
        return F.linear(hidden, self.proj.weight, self.proj.bias + self.logit_bias)

    # ----------------------------------------------------------------- incremental API
    def zero_state(self, batch: int) -> LSTMState:
        """All-zero ``(h, c)``, each ``[batch, H]``, on the module's device."""
        z = torch.zeros(batch, self.hidden_dim, device=self.device, dtype=self.proj.weight.dtype)
        return z, z.clone()

    def advance(self, tokens: torch.Tensor, state: LSTMState) -> LSTMState:
        """Feed ``tokens [B]`` into the LSTM from ``state``; return the new ``(h, c)``, each ``[B, H]``."""
        lstm = self.lstm
        h, c = torch.lstm_cell(
            self.embedding(tokens), state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
        )
        return h, c

    def logits(self, state: LSTMState) -> torch.Tensor:
        """Next-token logits ``[B, V]`` at ``state``."""
        return self._project(state[0])

    def logits_and_bias(self, state: LSTMState) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h @ W.T [B, V], bias [V])``, the projection without its bias add (see
        :meth:`SequenceGenerator.logits_and_bias`); the bias includes the banned-token ``-inf``s."""
        banned = self.variable_length or bool(self.banned_tokens)
        bias = self.proj.bias + self.logit_bias if banned else self.proj.bias
        return torch.mm(state[0], self.proj.weight.t()), bias

    def step(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """Feed ``tokens [B]`` and return the next-token logits ``[B, V]`` and the new state."""
        state = self.advance(tokens, state)
        return self.logits(state), state

    def initial_state(self, batch: int) -> LSTMState:
        """State at position 0 (after the start token): its logits give the distribution of ``y[0]``."""
        start = torch.full((batch,), self.start_token, dtype=torch.long, device=self.device)
        return self.advance(start, self.zero_state(batch))

    def prefix_states(self, seqs: torch.Tensor) -> LSTMState:
        """States at every position of a teacher-forced pass.

        ``seqs [B, T]`` -> ``(h, c)``, each ``[B, T, H]``; ``h[:, t]`` gives the logits of ``seqs[:, t]``,
        so a continuation of the prefix ``seqs[:, :t]`` starts from ``(h[:, t], c[:, t])``.
        """
        inputs = self.inputs(seqs)
        state = self.zero_state(seqs.shape[0])
        hs, cs = [], []
        for t in range(seqs.shape[1]):
            state = self.advance(inputs[:, t], state)
            hs.append(state[0])
            cs.append(state[1])
        return torch.stack(hs, dim=1), torch.stack(cs, dim=1)

    def soft_argmax_rollout(self, h0: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """TextGAN's generator pass (Texygen's ``_g_recurrence``) from the latent initial state ``h0``, keeping the
        graph.

        The LSTM starts from ``(h0, 0)`` and reads the start token's embedding; at each position the token is
        ``argmax(o_t)`` (greedy: the latent code is the only randomness) and the next input is the soft-argmax
        ``softmax(scale * o_t) @ embedding`` (float32 softmax), differentiable in every parameter.

        ``h0 [B, H]`` -> tokens ``[B, T]`` int64 and soft embeddings ``[B, T, E]`` (row t: the input that
        follows token t, i.e. the relaxed embedding of token t). Fixed-length models only.
        """
        if self.variable_length:
            raise ValueError("the soft-argmax rollout is for fixed-length models (no eos_token)")
        if h0.dim() != 2 or h0.shape[1] != self.hidden_dim:
            raise ValueError(f"h0 must be [B, {self.hidden_dim}], got shape {tuple(h0.shape)}")
        b = h0.shape[0]
        state = (h0, torch.zeros_like(h0))
        x = self.embedding(torch.full((b,), self.start_token, dtype=torch.long, device=h0.device))  # [B, E]
        lstm, tokens, soft = self.lstm, [], []
        for _ in range(self.seq_len):
            state = torch.lstm_cell(x, state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
            logits = self.logits(state)  # [B, V]
            tokens.append(logits.detach().argmax(dim=-1))  # [B]
            x = torch.softmax(scale * logits, dim=-1, dtype=torch.float32) @ self.embedding.weight  # [B, E]
            soft.append(x)
        return torch.stack(tokens, dim=1), torch.stack(soft, dim=1)  # [B, T], [B, T, E]
