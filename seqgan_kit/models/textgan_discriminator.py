"""TextGAN's discriminator (``discriminator.kind = "textgan"``): a CNN over the *generator's* embeddings.

Texygen's ``TextganDiscriminator`` (Zhang et al. 2017, "Adversarial Feature Matching for Text Generation")::

    embedded sequence [B, T, E]   (the generator's embedding: looked up for ids, softmax-weighted for soft-argmax
                                   samples; the discriminator has no embedding of its own and never trains it)
      -> x @ W, W [E, E]          (uniform(-1, 1))
      -> for each filter width k: conv of kernel [k, E], F_k maps, bias 0.1, ReLU, max over the T - k + 1
         positions            -> [B, F_k]
      -> concat               -> features f [B, D]     (D = sum F_k; Texygen: widths [2, 3], maps [100, 200])
    scores = f @ W_o + b_o    -> [B, 2]                (column 0: "generated")
    z_hat  = f @ W_z          -> [B, 1]                (the reconstruction of the latent code)

No highway layer, no dropout and no L2 term: Texygen's TextGAN passes no keep probability (it stays 1) and its
L2 term is a constant 0. Its unused reconstruction bias ``bz`` is left out. Initialisation as Texygen: conv and
output weights truncated normal (std 0.1, cut at 2 std), their biases 0.1, ``W_z`` truncated normal 0.1.

Convolutions are one GEMM per width over the unfolded windows, as in :mod:`seqgan_kit.models.discriminator`
(``convs[i]`` is ``nn.Linear(k*E, F_k)``, its weight the kernel flattened as ``[F_k, k, E]``). ReLU after the
max-pooling (ReLU is monotone). Fixed-length sequences only (the synthetic task, ``data.ending = "pad"`` text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import positive
from .discriminator import FilterChecks, _truncated_normal_
from .registry import register


@dataclass
class TextGANDiscriminatorConfig(FilterChecks):
    """The ``[discriminator]`` table of TextGAN's CNN (Texygen's sizes by default).

    ``emb_dim`` is the width of the generator embedding it reads: it must equal ``generator.emb_dim``."""

    kind: str = "textgan"
    emb_dim: int = 32
    filter_sizes: list[int] = field(default_factory=lambda: [2, 3])
    num_filters: list[int] = field(default_factory=lambda: [100, 200])

    def validate(self) -> None:
        positive(self, "emb_dim")
        self.check_filters()


@register("discriminator", "textgan", TextGANDiscriminatorConfig)
class TextGANDiscriminator(nn.Module):
    """TextGAN's CNN: features, class scores and the latent reconstruction of embedded sequences.

    Args:
        vocab_size: the vocabulary (recorded; the embeddings it reads are the generator's).
        seq_len: the fixed sequence length ``T``.
        emb_dim: the width ``E`` of the embedded sequences it reads.
        filter_sizes, num_filters: convolution widths (each <= ``seq_len``) and their feature maps.
        pad_token: must be None: variable-length text is not supported (Texygen pads to a fixed length).
    """

    capabilities = frozenset({"feature_matching"})

    def __init__(self, vocab_size: int, seq_len: int, emb_dim: int = 32, filter_sizes: Sequence[int] = (2, 3),
                 num_filters: Sequence[int] = (100, 200), pad_token: int | None = None) -> None:
        super().__init__()
        filter_sizes = [int(k) for k in filter_sizes]
        num_filters = [int(f) for f in num_filters]
        if vocab_size < 1 or seq_len < 1 or emb_dim < 1:
            raise ValueError(f"vocab_size, seq_len and emb_dim must be positive, got {vocab_size}, {seq_len}, "
                             f"{emb_dim}")
        if not filter_sizes or len(filter_sizes) != len(num_filters) or min(filter_sizes) < 1 \
                or min(num_filters) < 1:
            raise ValueError(f"filter_sizes and num_filters must be non-empty positive lists of equal length, got "
                             f"{filter_sizes} and {num_filters}")
        if max(filter_sizes) > seq_len:
            raise ValueError(f"filter of width {max(filter_sizes)} exceeds the sequence length {seq_len}")
        if pad_token is not None:
            raise ValueError("the TextGAN discriminator reads fixed-length sequences only (data.ending = 'pad')")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.emb_dim = emb_dim
        self.filter_sizes = filter_sizes
        self.num_filters = num_filters
        self.num_features = sum(num_filters)
        self.proj = nn.Linear(emb_dim, emb_dim, bias=False)  # Texygen's W: x @ W (here x @ proj.weight.T)
        self.convs = nn.ModuleList([nn.Linear(k * emb_dim, f) for k, f in zip(filter_sizes, num_filters,
                                                                              strict=True)])
        self.out = nn.Linear(self.num_features, 2)
        self.recon = nn.Linear(self.num_features, 1, bias=False)
        self.reset_parameters()

    @classmethod
    def from_config(cls, cfg: TextGANDiscriminatorConfig, vocab_size: int, seq_len: int,
                    pad_token: int | None = None, **_: Any) -> TextGANDiscriminator:
        """Build from the ``[discriminator]`` recipe table."""
        return cls(vocab_size, seq_len, cfg.emb_dim, cfg.filter_sizes, cfg.num_filters, pad_token)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "emb_dim": self.emb_dim,
                "filter_sizes": list(self.filter_sizes), "num_filters": list(self.num_filters)}

    def activation_bytes(self, batch: int) -> int:
        """float32 bytes one batch of ``batch`` embedded rows keeps for backward: the input and its projection,
        every width's windows and maps, the features and the MMD's pairwise differences against a batch as
        large (``[batch, batch, D]``, three of them)."""
        t, e, d = self.seq_len, self.emb_dim, self.num_features
        maps = sum((t - k + 1) * (k * e + 2 * f) for k, f in zip(self.filter_sizes, self.num_filters, strict=True))
        return 4 * batch * (2 * t * e + maps + 4 * d + 3 * batch * d)

    def reset_parameters(self) -> None:
        """Texygen's initialisation (see the module docstring)."""
        with torch.no_grad():
            nn.init.uniform_(self.proj.weight, -1.0, 1.0)
            for conv in self.convs:
                _truncated_normal_(conv.weight, 0.1)
                conv.bias.fill_(0.1)
            _truncated_normal_(self.out.weight, 0.1)
            self.out.bias.fill_(0.1)
            _truncated_normal_(self.recon.weight, 0.1)

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        """Max-pooled convolution features: embedded sequences ``[B, T, E]`` -> ``[B, D]``."""
        if emb.dim() != 3 or emb.shape[1] != self.seq_len or emb.shape[2] != self.emb_dim:
            raise ValueError(f"the TextGAN discriminator expects embedded sequences [B, {self.seq_len}, "
                             f"{self.emb_dim}], got shape {tuple(emb.shape)}")
        b, t, e = emb.shape
        x = self.proj(emb)  # [B, T, E]
        pooled = []
        for k, conv in zip(self.filter_sizes, self.convs, strict=True):
            p = t - k + 1
            windows = x.unfold(1, k, 1).transpose(2, 3).reshape(b * p, k * e)  # [B, P, E, k] -> [B*P, k*E]
            pooled.append(conv(windows).view(b, p, -1).amax(dim=1))  # [B*P, F_k] -> [B, P, F_k] -> [B, F_k]
        return torch.cat(pooled, dim=1).relu()  # [B, D]

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores (unnormalised, column 0 = generated): ``[B, D]`` -> ``[B, 2]``."""
        return self.out(features)

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """The latent code's reconstruction ``z_hat``: ``[B, D]`` -> ``[B, 1]`` (Texygen's ``W_z`` has one
        column, compared with every coordinate of ``z``)."""
        return self.recon(features)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Class scores of embedded sequences: ``[B, T, E]`` -> ``[B, 2]``."""
        return self.scores(self.features(emb))
