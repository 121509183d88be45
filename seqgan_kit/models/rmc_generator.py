"""RelGAN's relational-memory generator (``generator.kind = "rmc"``; Santoro et al. 2018, Nie et al. 2019).

The state is a memory ``M [B, N, D]`` of ``N = mem_slots`` rows of width ``D = num_heads * head_size``
(paper: 1 slot, 2 heads of 256, so D = 512). One step with input token ``x``:

    e = Embedding(x)                                          [B, E]     (E = emb_dim, paper 32)
    u = W_in e + b_in                                         [B, 1, D]
    A = [M ; u]                                               [B, N+1, D]
    qkv = LayerNorm(A W_qkv)  split per head into q, k, v     (key size = head size)
    A' = LayerNorm(A + MultiHead(q * (3 head_size)^-1/2, k, v))
    A'' = LayerNorm(A' + MLP(A'))                             MLP: D -> D -> D, ReLU between
    M~ = A''[:, :N]                                           (the input row is dropped)
    i, f = sigmoid(u W_gi + tanh(M) W_gm + (0, 1))            per-unit input / forget gates (forget bias 1)
    M' = i * tanh(M~) + f * M

The logits at a state are ``W_out flatten(M) + b_out``. The initial memory is the identity (padded with zeros)
in every row of the batch; the state at position 0 is that memory advanced by the start token, as for the LSTM.
The query scale ``(2 key_size + head_size)^-1/2`` is the reference implementation's (it scales by the whole
qkv width). Sequence conventions are :mod:`seqgan_kit.models.generator`'s, so MLE, sampling, NLL metrics and the
Gumbel rollout work unchanged.

Initialisation (``init``): ``"relgan"`` (the recipe default) is the reference's: every weight matrix a truncated
normal (cut at 2 std, TensorFlow's ``truncated_normal_initializer``) with std ``1/sqrt(fan_in)`` (its
``create_linear_initializer``), so the embedding ``[V, E]`` gets std ``1/sqrt(V)``, the output layer
``1/sqrt(N D)``, the input projection ``1/sqrt(E)`` and the attention, MLP and gate matrices ``1/sqrt(D)``; every
bias 0; LayerNorm gain 1 and offset 0. ``"torch"``: PyTorch's defaults (``nn.Embedding`` N(0, 1), ``nn.Linear``
uniform), what this kind used before (and what a checkpoint without the key was built with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import one_of, positive
from .generator import SequenceGenerator
from .registry import register

INITS = ("relgan", "torch")


def relgan_linear_init_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    """RelGAN's ``create_linear_initializer``: N(0, 1/fan_in) truncated at 2 std, in place."""
    std = fan_in ** -0.5
    return nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)


@dataclass
class RMCGeneratorConfig:
    """The ``[generator]`` table of the relational-memory generator (RelGAN's sizes by default)."""

    kind: str = "rmc"
    emb_dim: int = 32
    mem_slots: int = 1
    head_size: int = 256
    num_heads: int = 2
    mlp_layers: int = 2
    """Layers of the post-attention MLP (each of width num_heads * head_size)."""
    init: str = "relgan"
    """``relgan``: the reference's truncated-normal initialisers; ``torch``: PyTorch's defaults (module docstring)."""

    def validate(self) -> None:
        positive(self, "emb_dim", "mem_slots", "head_size", "num_heads", "mlp_layers")
        one_of(self, "init", INITS)


@register("generator", "rmc", RMCGeneratorConfig)
class RMCGenerator(SequenceGenerator):
    """Relational-memory language model; the state is the memory ``[B, N, D]``."""

    FORGET_BIAS = 1.0
    INPUT_BIAS = 0.0

    def __init__(self, vocab_size: int, seq_len: int = 20, emb_dim: int = 32, mem_slots: int = 1,
                 head_size: int = 256, num_heads: int = 2, mlp_layers: int = 2, start_token: int = 0,
                 eos_token: int | None = None, pad_token: int = 0, banned_tokens: Sequence[int] = (),
                 init: str = "torch") -> None:
        super().__init__(vocab_size, seq_len, start_token, eos_token, pad_token, banned_tokens)
        if min(emb_dim, mem_slots, head_size, num_heads, mlp_layers) < 1:
            raise ValueError("emb_dim, mem_slots, head_size, num_heads and mlp_layers must be positive")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        self.emb_dim, self.mem_slots, self.head_size, self.num_heads = emb_dim, mem_slots, head_size, num_heads
        self.mlp_layers = mlp_layers
        d = head_size * num_heads
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.input_proj = nn.Linear(emb_dim, d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.qkv_norm = nn.LayerNorm(3 * d)
        self.attn_norm = nn.LayerNorm(d)
        self.mlp = nn.ModuleList([nn.Linear(d, d) for _ in range(mlp_layers)])
        self.mlp_norm = nn.LayerNorm(d)
        self.gate_input = nn.Linear(d, 2 * d, bias=False)
        self.gate_memory = nn.Linear(d, 2 * d, bias=False)
        self.proj = nn.Linear(mem_slots * d, vocab_size)
        init_memory = torch.eye(mem_slots, d)  # identity rows, zero-padded / truncated to the width
        self.register_buffer("init_memory", init_memory, persistent=False)
        if init == "relgan":
            self.relgan_init_()

    @torch.no_grad()
    def relgan_init_(self) -> None:
        """The reference's initialisers (module docstring): truncated normals of std 1/sqrt(fan_in), zero biases."""
        relgan_linear_init_(self.embedding.weight, self.vocab_size)  # [V, E]: RelGAN's g_emb, std 1/sqrt(V)
        for layer in (self.input_proj, self.qkv, *self.mlp, self.gate_input, self.gate_memory, self.proj):
            relgan_linear_init_(layer.weight, layer.in_features)  # weight [out, in]
            if layer.bias is not None:
                layer.bias.zero_()

    @classmethod
    def from_config(cls, cfg: RMCGeneratorConfig, **sizes: Any) -> RMCGenerator:
        return cls(emb_dim=cfg.emb_dim, mem_slots=cfg.mem_slots, head_size=cfg.head_size, num_heads=cfg.num_heads,
                   mlp_layers=cfg.mlp_layers, init=cfg.init, **sizes)

    def config(self) -> dict[str, Any]:
        return {**self.special_tokens(), "emb_dim": self.emb_dim, "mem_slots": self.mem_slots,
                "head_size": self.head_size, "num_heads": self.num_heads, "mlp_layers": self.mlp_layers,
                "init": self.init}

    def state_floats(self) -> int:
        """A position keeps the embedding and, per memory row (input included), q/k/v, attention, MLP layers,
        norms and gates: about ``E + (N + 1) D (10 + mlp_layers)``."""
        return self.emb_dim + (self.mem_slots + 1) * self.head_size * self.num_heads * (10 + self.mlp_layers)

    # ----------------------------------------------------------------- the memory core
    def _attend(self, mem: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention block with its MLP: ``[B, R, D]`` -> ``[B, R, D]``."""
        b, r, d = mem.shape
        h, hs = self.num_heads, self.head_size
        qkv = self.qkv_norm(self.qkv(mem)).view(b, r, h, 3 * hs).transpose(1, 2)  # [B, H, R, 3 hs]
        q, k, v = qkv.split(hs, dim=-1)
        q = q * (3 * hs) ** -0.5
        weights = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # [B, H, R, R]
        attended = (weights @ v).transpose(1, 2).reshape(b, r, d)  # [B, R, D]
        mem = self.attn_norm(mem + attended)
        x = mem
        for i, layer in enumerate(self.mlp):
            x = layer(x)
            if i + 1 < len(self.mlp):
                x = F.relu(x)
        return self.mlp_norm(mem + x)

    def advance(self, tokens: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Feed ``tokens [B]`` into the memory ``state [B, N, D]``; return the next memory."""
        u = self.input_proj(self.embedding(tokens)).unsqueeze(1)  # [B, 1, D]
        attended = self._attend(torch.cat([state, u], dim=1))[:, :-1]  # [B, N, D]
        gates = self.gate_memory(torch.tanh(state)) + self.gate_input(u)  # [B, N, 2D]
        i, f = gates.chunk(2, dim=-1)
        i = torch.sigmoid(i + self.INPUT_BIAS)
        f = torch.sigmoid(f + self.FORGET_BIAS)
        return i * torch.tanh(attended) + f * state

    def _project(self, memory: torch.Tensor) -> torch.Tensor:
        """``[..., N, D]`` -> logits ``[..., V]`` (banned tokens at -inf)."""
        flat = memory.flatten(-2)  # [..., N, D] -> [..., N*D]
        return F.linear(flat, self.proj.weight, self.proj.bias + self.logit_bias)

    def logits(self, state: torch.Tensor) -> torch.Tensor:
        return self._project(state)

    def zero_state(self, batch: int) -> torch.Tensor:
        """The initial memory (identity rows) for ``batch`` rows: ``[B, N, D]``."""
        return self.init_memory.to(self.proj.weight.dtype).expand(batch, -1, -1).contiguous()

    def initial_state(self, batch: int) -> torch.Tensor:
        start = torch.full((batch,), self.start_token, dtype=torch.long, device=self.device)
        return self.advance(start, self.zero_state(batch))

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: ``seqs [B, T]`` -> ``[B, T, V]``."""
        inputs = self.inputs(seqs)
        state = self.zero_state(seqs.shape[0])
        memories = []
        for t in range(seqs.shape[1]):
            state = self.advance(inputs[:, t], state)
            memories.append(state)
        return self._project(torch.stack(memories, dim=1))  # [B, T, N, D] -> [B, T, V]
