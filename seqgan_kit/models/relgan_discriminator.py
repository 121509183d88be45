"""RelGAN's multi-representation CNN discriminator (``discriminator.kind = "relgan"``; Nie et al., ICLR 2019).

Architecture (paper / reference sizes)::

    one-hots [B, T, V] (or ids [B, T]) -> embedding [B, T, E]            E = 64, by matmul for one-hots
      -> split the width into S representations of width w = E / S      S = 64, so w = 1
      -> for each filter size k (2, 3, 4, 5; 300 maps each), one convolution shared by all S representations:
         kernel [k, w] over a representation's [T, w] sequence, ReLU, max over the positions   -> [B, S, F_k]
      -> concat                                                          -> [B, S, D]   (D = 1,200)
      -> one highway layer (gate bias 0), dropout (keep 0.75, training mode only)
      -> linear to 100 (no activation, as in the reference), linear to 1 -> [B, S] logits

The GAN losses average over the ``S`` logits of every sequence (:meth:`gan_logits` returns all of them).

- The shared convolution is a linear map on every window of ``k`` rows of each representation; it runs as one
  GEMM over ``[B*S*P, k*w]`` windows (``P = T - k + 1``).
- Variable-length text (``pad_token`` set): as in :mod:`seqgan_kit.models.discriminator`, a sequence of ``L``
  tokens (up to and including EOS) is scored as if it stood alone: PAD embeds to zero and only windows inside
  the sequence take part in the max-pooling (or the window at start 0 for a sequence shorter than the filter),
  so the padding that follows a sequence does not change its score. With one-hots, a position is padding when
  its row has no mass off the PAD column (an all-zero row, as Gumbel rollouts write after EOS).
- Initialisation (``init``): ``"relgan"`` (the recipe default) is the reference's: truncated normals cut at 2 std
  (TensorFlow's ``truncated_normal_initializer``): the embedding std ``1/sqrt(V)``, each convolution
  ``sqrt(2 / (k w))`` (its ``conv2d`` with ``stddev=None``: one input channel), the highway, FC and output
  matrices ``1/sqrt(fan_in)``; every bias 0; and the highway has **no biases** (its ``linear`` has
  ``use_bias=False``), gate offset 0. ``"torch"``: the embedding as above, every other layer PyTorch's default,
  a highway with biases (what this kind was before, and what a checkpoint without the key was built with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, in_range, one_of, positive
from .discriminator import FilterChecks
from .registry import register
from .rmc_generator import INITS, relgan_linear_init_


@dataclass
class RelGANDiscriminatorConfig(FilterChecks):
    """The ``[discriminator]`` table of RelGAN's multi-representation CNN (paper sizes by default)."""

    kind: str = "relgan"
    emb_dim: int = 64
    num_rep: int = 64
    """Representations S; ``emb_dim`` must be a multiple of it (each representation is emb_dim/S wide)."""
    filter_sizes: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    num_filters: list[int] = field(default_factory=lambda: [300, 300, 300, 300])
    dropout_keep: float = 0.75
    fc_dim: int = 100
    init: str = "relgan"
    """``relgan``: the reference's initialisers and a highway without biases; ``torch``: PyTorch's defaults."""

    def validate(self) -> None:
        positive(self, "emb_dim", "num_rep", "fc_dim")
        one_of(self, "init", INITS)
        in_range(self, "dropout_keep", 0, 1, low_open=True)
        if self.emb_dim % self.num_rep:
            raise ConfigError("num_rep", f"must divide emb_dim ({self.emb_dim}), got {self.num_rep}")
        self.check_filters()


@register("discriminator", "relgan", RelGANDiscriminatorConfig)
class RelGANDiscriminator(nn.Module):
    """Multi-representation CNN: ``[B, T]`` ids or ``[B, T, V]`` one-hots -> ``[B, S]`` logits (high = real)."""

    capabilities = frozenset({"gan_logits"})

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        emb_dim: int = 64,
        num_rep: int = 64,
        filter_sizes: Sequence[int] = (2, 3, 4, 5),
        num_filters: Sequence[int] = (300, 300, 300, 300),
        dropout_keep: float = 0.75,
        fc_dim: int = 100,
        pad_token: int | None = None,
        init: str = "torch",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        filter_sizes = [int(k) for k in filter_sizes]
        num_filters = [int(f) for f in num_filters]
        if min(vocab_size, seq_len, emb_dim, num_rep, fc_dim) < 1 or emb_dim % num_rep:
            raise ValueError(f"vocab_size, seq_len, emb_dim, num_rep and fc_dim must be positive and num_rep must "
                             f"divide emb_dim, got {vocab_size}, {seq_len}, {emb_dim}, {num_rep}, {fc_dim}")
        if not filter_sizes or len(filter_sizes) != len(num_filters) or min(filter_sizes + num_filters) < 1:
            raise ValueError(f"bad filter_sizes {filter_sizes} / num_filters {num_filters}")
        if max(filter_sizes) > seq_len:
            raise ValueError(f"filter of width {max(filter_sizes)} exceeds the sequence length {seq_len}")
        if not 0 < dropout_keep <= 1:
            raise ValueError(f"dropout_keep must lie in (0, 1], got {dropout_keep}")
        if pad_token is not None and not 0 <= pad_token < vocab_size:
            raise ValueError(f"pad_token {pad_token} outside the vocabulary of size {vocab_size}")
        self.vocab_size, self.seq_len, self.emb_dim, self.num_rep = vocab_size, seq_len, emb_dim, num_rep
        self.filter_sizes, self.num_filters = filter_sizes, num_filters
        self.dropout_keep, self.fc_dim, self.pad_token, self.init = float(dropout_keep), fc_dim, pad_token, init
        self.rep_width = emb_dim // num_rep
        self.num_features = d = sum(num_filters)
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_token)
        self.convs = nn.ModuleList(
            [nn.Linear(k * self.rep_width, f) for k, f in zip(filter_sizes, num_filters, strict=True)])
        self.highway = nn.Linear(d, 2 * d, bias=init == "torch")  # columns [:D]: transform, [D:]: gate
        self.dropout = nn.Dropout(p=1.0 - self.dropout_keep)
        self.fc = nn.Linear(d, fc_dim)
        self.out = nn.Linear(fc_dim, 1)
        with torch.no_grad():
            std = vocab_size ** -0.5
            nn.init.trunc_normal_(self.embedding.weight, 0.0, std, -2 * std, 2 * std)
            if init == "relgan":
                for k, conv in zip(filter_sizes, self.convs, strict=True):
                    std = (2.0 / (k * self.rep_width)) ** 0.5
                    nn.init.trunc_normal_(conv.weight, 0.0, std, -2 * std, 2 * std)  # [F_k, k w]
                    conv.bias.zero_()
                relgan_linear_init_(self.highway.weight, d)  # [2D, D]: transform and gate, both 1/sqrt(D)
                for layer in (self.fc, self.out):
                    relgan_linear_init_(layer.weight, layer.in_features)
                    layer.bias.zero_()
            if pad_token is not None:
                self.embedding.weight[pad_token].zero_()

    @classmethod
    def from_config(cls, cfg: RelGANDiscriminatorConfig, vocab_size: int, seq_len: int,
                    pad_token: int | None = None, **_: Any) -> RelGANDiscriminator:
        return cls(vocab_size, seq_len, cfg.emb_dim, cfg.num_rep, cfg.filter_sizes, cfg.num_filters,
                   cfg.dropout_keep, cfg.fc_dim, pad_token, cfg.init)

    def config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "emb_dim": self.emb_dim,
                "num_rep": self.num_rep, "filter_sizes": list(self.filter_sizes),
                "num_filters": list(self.num_filters), "dropout_keep": self.dropout_keep, "fc_dim": self.fc_dim,
                "pad_token": self.pad_token, "init": self.init}

    def activation_bytes(self, batch: int) -> int:
        """float32 bytes one batch of relaxed one-hots ``[batch, T, V]`` keeps for backward: the input, the
        embedding, every representation's windows and feature maps, the highway and output layers."""
        t, s, w = self.seq_len, self.num_rep, self.rep_width
        maps = sum((t - k + 1) * (k * w + 2 * f) for k, f in zip(self.filter_sizes, self.num_filters, strict=True))
        per_rep = 6 * self.num_features + 2 * self.fc_dim
        return 4 * batch * (t * self.vocab_size + t * self.emb_dim + s * maps + s * per_rep)

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def embed(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embeddings ``[B, T, E]`` and lengths ``[B]`` (None without ``pad_token``) of ids or one-hots."""
        if not seqs.is_floating_point():
            if seqs.dim() != 2:
                raise ValueError(f"expected [B, T] token ids, got shape {tuple(seqs.shape)}")
            lengths = None if self.pad_token is None else (seqs != self.pad_token).sum(dim=1)
            return self.embedding(seqs), lengths
        if seqs.dim() != 3 or seqs.shape[2] != self.vocab_size:
            raise ValueError(f"expected [B, T, {self.vocab_size}] one-hots, got shape {tuple(seqs.shape)}")
        emb = seqs @ self.embedding.weight  # [B, T, E]
        if self.pad_token is None:
            return emb, None
        mass = seqs.detach().sum(dim=-1) - seqs.detach()[..., self.pad_token]  # [B, T]
        return emb, (mass > 0.5).sum(dim=1)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` ids or ``[B, T, V]`` one-hots -> ``[B, S]`` logits; dropout only when training.

        ``T`` may be any length >= the widest filter (the discriminator has no position-dependent weights).
        """
        emb, lengths = self.embed(seqs)
        b, t, _ = emb.shape
        if t < max(self.filter_sizes):
            raise ValueError(f"sequences of length {t} are shorter than the widest filter {max(self.filter_sizes)}")
        s, w = self.num_rep, self.rep_width
        reps = emb.view(b, t, s, w).permute(0, 2, 1, 3)  # [B, S, T, w]
        pooled = []
        for k, conv in zip(self.filter_sizes, self.convs, strict=True):
            p = t - k + 1
            windows = reps.unfold(2, k, 1)  # [B, S, P, w, k]
            windows = windows.transpose(3, 4).reshape(b * s * p, k * w)  # rows (b, s, p), columns (offset, w)
            maps = conv(windows).view(b, s, p, -1)  # [B, S, P, F_k]
            if lengths is not None:
                outside = torch.arange(p, device=emb.device) > (lengths - k).clamp(min=0)[:, None]  # [B, P]
                maps = maps.masked_fill(outside[:, None, :, None], float("-inf"))
            pooled.append(maps.amax(dim=2))  # [B, S, F_k]; ReLU after the max (monotone: same result)
        x = torch.cat(pooled, dim=2).relu()  # [B, S, D]
        d = self.num_features
        hw = self.highway(x)  # [B, S, 2D]
        gate = torch.sigmoid(hw[..., d:])
        x = gate * hw[..., :d].relu() + (1.0 - gate) * x
        return self.out(self.fc(self.dropout(x))).squeeze(-1)  # [B, S]

    def gan_logits(self, seqs: torch.Tensor) -> torch.Tensor:
        """The ``[B, S]`` logits the GAN losses average over (one per representation)."""
        return self(seqs)
