"""RankGAN's ranker (Lin et al., NIPS 2017): the highway CNN's features, scored by cosine relevance to a reference
set and ranked by a softmax within a comparison set.

Architecture and scoring, as the authors' code (github.com/cookielee77/RankGan-NIPS2017, ``ranker.py``) computes
them::

    tokens [B, T] -> the SeqGAN highway CNN's max-pooled features after the highway layer   -> [B, D]
                  -> dropout (keep 0.75, training only)                                      -> y_u [B, D]
    references [S, T] -> the same network (same weights, same dropout)                       -> y_s [S, D]
    score(u)   = gamma * sum_s cos(y_u, y_s)                                                 -> [B]
    P(u | C)   = softmax over the comparison set C of score                                 (the rank score)

- The comparison set is the batch the scores are computed for: a ranker batch (real and generated sentences
  mixed) in training, and, for the generator's rewards, the generator's batch completed from the same prefix
  length by the same rollout (:mod:`seqgan_kit.train.rankgan`).
- The paper writes the rank score as the mean over references of a softmax of ``gamma * cos`` over C; the
  authors' code takes the softmax of ``gamma * sum_s cos`` instead (one softmax), and so does this module.
- :meth:`CNNRanker.loss` is the authors' ranking loss: ``-(mean_{real u} log P(u|C) - mean_{generated u} log P(u|C))``
  over one batch C (a side with no row contributes nothing).
- Initialisation as the authors': embedding, convolution weights and biases uniform(-0.1, 0.1); the highway's
  weights and biases Glorot-uniform (TensorFlow's ``get_variable`` default, the bias as a vector of fan 2 x D).
  There is no output layer, and no L2 term.

The feature network is :class:`~seqgan_kit.models.discriminator.CNNDiscriminator`'s (filter widths, PAD masking of
variable-length text), without its output layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import in_range, positive
from .discriminator import CNNDiscriminator, FilterChecks
from .registry import register


@dataclass
class RankerConfig(FilterChecks):
    """The ``[discriminator]`` table of RankGAN's ranker (``kind = "ranker"``; the authors' sizes by default)."""

    kind: str = "ranker"
    emb_dim: int = 64
    filter_sizes: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20])
    num_filters: list[int] = field(
        default_factory=lambda: [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
    )
    dropout_keep: float = 0.75
    """Keep probability in training (features of the batch and of the references); none for rewards."""
    gamma: float = 1.0
    """The softmax's inverse temperature on the summed cosine relevance (the authors' ``gamma = 1``)."""

    def validate(self) -> None:
        positive(self, "emb_dim", "gamma")
        in_range(self, "dropout_keep", 0, 1, low_open=True)
        self.check_filters()


@register("discriminator", "ranker", RankerConfig)
class CNNRanker(CNNDiscriminator):
    """The ranker: highway CNN features compared by cosine to a reference set (see the module docstring).

    Args:
        vocab_size, seq_len, emb_dim, filter_sizes, num_filters, dropout_keep, pad_token: as
            :class:`~seqgan_kit.models.discriminator.CNNDiscriminator`.
        gamma: inverse temperature of the rank softmax.
    """

    capabilities = frozenset({"rank_score"})

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        emb_dim: int = 64,
        filter_sizes: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
        num_filters: Sequence[int] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
        dropout_keep: float = 0.75,
        gamma: float = 1.0,
        pad_token: int | None = None,
    ) -> None:
        if not gamma > 0 or not math.isfinite(gamma):
            raise ValueError(f"gamma must be a positive finite number, got {gamma}")
        self.gamma = float(gamma)
        super().__init__(vocab_size, seq_len, emb_dim, filter_sizes, num_filters, dropout_keep, 0.0, pad_token)
        del self.out  # features only: an unused layer would hold parameters no loss reaches

    @classmethod
    def from_config(cls, cfg: RankerConfig, vocab_size: int, seq_len: int,
                    pad_token: int | None = None, **_: Any) -> CNNRanker:
        """Build from the ``[discriminator]`` recipe table."""
        return cls(vocab_size, seq_len, cfg.emb_dim, cfg.filter_sizes, cfg.num_filters, cfg.dropout_keep, cfg.gamma,
                   pad_token)

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "emb_dim": self.emb_dim,
                "filter_sizes": list(self.filter_sizes), "num_filters": list(self.num_filters),
                "dropout_keep": self.dropout_keep, "gamma": self.gamma, "pad_token": self.pad_token}

    def reset_parameters(self) -> None:
        """The authors' initialisation (see the module docstring)."""
        d = self.num_features
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            if self.pad_token is not None:
                self.embedding.weight[self.pad_token].zero_()
            for conv in self.convs:
                nn.init.uniform_(conv.weight, -0.1, 0.1)
                nn.init.uniform_(conv.bias, -0.1, 0.1)
            nn.init.xavier_uniform_(self.highway.weight[:d])  # W_h  [D, D]
            nn.init.xavier_uniform_(self.highway.weight[d:])  # W_t  [D, D]
            bound = math.sqrt(6.0 / (2 * d))  # Glorot-uniform of a [D] vector: fan_in = fan_out = D
            nn.init.uniform_(self.highway.bias, -bound, bound)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    # ----------------------------------------------------------------- scoring
    def embed_sentences(self, seqs: torch.Tensor) -> torch.Tensor:
        """Unit-length feature vectors: ``seqs [B, T]`` -> ``[B, D]`` (dropout when training)."""
        return F.normalize(self.dropout(self.features(seqs)), dim=-1)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Unit-length feature vectors ``[B, D]`` of ``seqs [B, T]`` (see :meth:`embed_sentences`)."""
        return self.embed_sentences(seqs)

    def relevance(self, seqs: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """``gamma * sum_s cos(y_u, y_s)``: ``seqs [B, T]``, ``references [S, T]`` -> ``[B]`` (differentiable)."""
        return self.relevance_to(self(seqs), self.reference_direction(references))

    def reference_direction(self, references: torch.Tensor) -> torch.Tensor:
        """The sum of the references' unit feature vectors: ``[S, T]`` -> ``[D]`` (then ``y_u . it`` is the sum of
        the cosines)."""
        return self(references).sum(dim=0)  # [S, D] -> [D]

    def relevance_to(self, unit_features: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """``gamma * unit_features @ direction``: ``[B, D]``, ``[D]`` -> ``[B]``."""
        return self.gamma * (unit_features @ direction)

    @torch.no_grad()
    def rank_scores(self, seqs: torch.Tensor, references: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Relevance scores without dropout or autograd (the previous mode is restored): ``seqs [M, T]`` ->
        ``[M]`` float32; the softmax over a comparison set is the caller's (the rewards group the rows)."""
        was_training = self.training
        self.eval()
        try:
            direction = self.reference_direction(references.to(self.device)).float()  # [D]
            chunks = [self.relevance_to(self(seqs[lo:lo + batch_size].to(self.device)).float(), direction)
                      for lo in range(0, seqs.shape[0], batch_size)]
        finally:
            self.train(was_training)
        if not chunks:
            return torch.empty(0, device=self.device)
        return torch.cat(chunks)  # [M]

    def loss(self, seqs: torch.Tensor, labels: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """The authors' ranking loss over one comparison set (see the module docstring).

        ``seqs [B, T]`` (the batch is the comparison set), ``labels [B]`` (1 = real, 0 = generated),
        ``references [S, T]`` real sentences -> scalar."""
        if labels.shape != seqs.shape[:1]:
            raise ValueError(f"labels must have shape [{seqs.shape[0]}], got {tuple(labels.shape)}")
        return self.loss_from_scores(self.relevance(seqs, references), labels)

    @staticmethod
    def loss_from_scores(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``-(mean_real log P - mean_generated log P)`` from the relevance ``scores [B]`` of one comparison set."""
        log_rank = torch.log_softmax(scores.float(), dim=0)  # [B]
        real = (labels == 1).to(log_rank.dtype)  # [B]
        generated = 1.0 - real
        pos = (log_rank * real).sum() / real.sum().clamp(min=1)
        neg = (log_rank * generated).sum() / generated.sum().clamp(min=1)
        return -(pos - neg)

    def prob_real(self, seqs: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        raise TypeError("the ranker has no P(real): it ranks a sentence within a comparison set (rank_scores)")

    def gan_logits(self, seqs: torch.Tensor) -> torch.Tensor:
        raise TypeError("the ranker has no GAN logits: it ranks a sentence within a comparison set (rank_scores)")
