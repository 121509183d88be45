"""Skip-Thought vectors (Kiros et al., NIPS 2015): a GRU encoder trained to predict the neighbouring sentences.

::

    s_i   [B, T] -> embedding [B, T, E] -> encoder GRU -> h_i [B, H]      (bi-skip: forward ++ backward, [B, 2H])
    s_i-1 [B, T'] <- decoder_prev GRU(embedding(BOS, s_i-1[:-1]), conditioned on h_i) -> shared output [B, T', V]
    s_i+1 [B, T"] <- decoder_next GRU(embedding(BOS, s_i+1[:-1]), conditioned on h_i) -> shared output [B, T", V]

- One word embedding for the encoder and both decoders, and one output matrix for both decoders (as the released
  training code shares ``Wemb``).
- Conditioning ``"init"`` (the released code): the decoders start from ``h_i``. ``"bias"`` (the paper's
  equations): ``h_i`` enters every decoder step, which is a per-step bias on each gate; implemented by feeding
  ``[embedding, h_i]`` as the decoder input, the decoders starting from zero.
- Initialisation: recurrent matrices orthogonal (each gate's block separately), every other weight
  U(-0.1, 0.1), biases zero.
- :meth:`SkipThought.encode` returns L2-normalised vectors (the released ``encode`` with ``use_norm``).
- Centring (not in the released code): a run stores ``center`` (:data:`CENTER_KEY`), the mean unnormalised vector
  of its training units, beside the weights; the encoder subtracts it before normalising (as SIF removes its
  common component). Without it the vectors share one large direction (the decoders' common starting state) and
  every cosine is near 1 (see ``eval/results/encoders.md``).

Rows follow the package's encoding (tokens, EOS, then PAD = 0): the encoder reads the tokens and the EOS.

Vocabulary expansion (Sec. 2.2 of the paper): :func:`fit_linear_map` fits ``W`` by least squares so that
``x_w2v W ~ e_encoder`` on the words both vocabularies have; :class:`ExpandedVocabulary` then gives any word with a
word2vec vector an encoder embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.corpus import row_lengths
from ..data.tokenization import BOS, PAD

MODEL_FILE = "skipthought.safetensors"
"""A finished Skip-Thought run's encoder weights (beside its ``checkpoint.safetensors``)."""

CENTER_KEY = "center"
"""The mean training vector ``[out_dim]`` in ``skipthought.safetensors`` (optional; older runs lack it)."""
INIT_RANGE = 0.1
CONDITIONING = ("init", "bias")


class SkipThought(nn.Module):
    """The encoder and its two decoders (see the module docstring)."""

    def __init__(self, vocab_size: int, emb_dim: int, dim: int, bidirectional: bool = False,
                 conditioning: str = "init") -> None:
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {CONDITIONING}, got {conditioning!r}")
        self.vocab_size, self.emb_dim, self.dim = vocab_size, emb_dim, dim
        self.bidirectional, self.conditioning = bidirectional, conditioning
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.encoder_fw = nn.GRU(emb_dim, dim, batch_first=True)
        self.encoder_bw = nn.GRU(emb_dim, dim, batch_first=True) if bidirectional else None
        ctx = self.out_dim
        dec_in = emb_dim + (ctx if conditioning == "bias" else 0)
        self.decoder_prev = nn.GRU(dec_in, ctx, batch_first=True)
        self.decoder_next = nn.GRU(dec_in, ctx, batch_first=True)
        self.output = nn.Linear(ctx, vocab_size)
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Width of a sentence vector: ``dim``, or ``2 dim`` for bi-skip."""
        return self.dim * (2 if self.bidirectional else 1)

    def config(self) -> dict:
        return {"vocab_size": self.vocab_size, "emb_dim": self.emb_dim, "dim": self.dim,
                "bidirectional": self.bidirectional, "conditioning": self.conditioning}

    def grus(self) -> list[nn.GRU]:
        return [g for g in (self.encoder_fw, self.encoder_bw, self.decoder_prev, self.decoder_next) if g is not None]

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if "weight_hh" in name:
                hidden = p.shape[1]
                with torch.no_grad():
                    for block in p.split(hidden, dim=0):  # [3H, H] -> 3 x [H, H] (reset, update, new)
                        nn.init.orthogonal_(block)
            elif "bias" in name:
                nn.init.zeros_(p)
            else:
                nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)
        with torch.no_grad():
            self.embedding.weight[PAD] = 0.0

    # ------------------------------------------------------------------ encoder
    def _run_encoder(self, gru: nn.GRU, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = gru(packed)  # h [1, B, H]: the state after each row's last real step
        return h[0]

    def encode_embedded(self, emb: torch.Tensor, lengths: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Sentence vectors ``[B, out_dim]`` of embedded inputs ``emb [B, T, E]`` with ``lengths [B]`` (>= 1)."""
        h = self._run_encoder(self.encoder_fw, emb, lengths)  # [B, H]
        if self.encoder_bw is not None:
            steps = torch.arange(emb.shape[1], device=emb.device)[None, :]  # [1, T]
            rev = (lengths[:, None] - 1 - steps).clamp(min=0)  # [B, T]: position read at step t, backwards
            rev = torch.where(steps < lengths[:, None], rev, steps)
            emb_rev = emb.gather(1, rev[:, :, None].expand(-1, -1, emb.shape[2]))  # [B, T, E]
            h = torch.cat([h, self._run_encoder(self.encoder_bw, emb_rev, lengths)], dim=1)  # [B, 2H]
        return F.normalize(h, dim=1) if normalize else h

    def encode(self, rows: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Sentence vectors ``[B, out_dim]`` of id rows ``[B, T]`` (tokens, EOS, PAD), L2-normalised by default."""
        lengths = (row_lengths(rows) + 1).clamp(max=rows.shape[1])  # [B] tokens + EOS
        return self.encode_embedded(self.embedding(rows), lengths, normalize)

    # ------------------------------------------------------------------ decoders
    def _decode_loss(self, gru: nn.GRU, ctx: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy of ``target [B, T]`` (PAD ignored) given ``ctx [B, C]``, and its token count."""
        t = int(row_lengths(target).max()) + 1  # the longest row's tokens + EOS
        target = target[:, :t]  # [B, t]
        inputs = torch.cat([torch.full_like(target[:, :1], BOS), target[:, :-1]], dim=1)  # [B, t]: BOS, y_1..
        emb = self.embedding(inputs)  # [B, t, E]
        if self.conditioning == "bias":
            emb = torch.cat([emb, ctx[:, None, :].expand(-1, t, -1)], dim=2)  # [B, t, E + C]
            h0 = torch.zeros_like(ctx)[None]  # [1, B, C]
        else:
            h0 = ctx[None]  # [1, B, C]
        out, _ = gru(emb, h0.contiguous())  # [B, t, C]
        logits = self.output(out)  # [B, t, V]
        # [B, t, V] -> [B*t, V] against [B*t]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD,
                               reduction="sum")
        return loss, int((target != PAD).sum())

    def forward(self, prev: torch.Tensor, cur: torch.Tensor, nxt: torch.Tensor,
                tokens: float | None = None) -> torch.Tensor:
        """Mean per-token cross-entropy of predicting ``prev`` and ``nxt`` (each ``[B, T]``) from ``cur``.

        ``tokens``: divide the summed cross-entropy by this count instead (a rank's share of a global batch).
        """
        ctx = self.encode(cur, normalize=False)  # [B, C]
        loss_p, n_p = self._decode_loss(self.decoder_prev, ctx, prev)
        loss_n, n_n = self._decode_loss(self.decoder_next, ctx, nxt)
        return (loss_p + loss_n) / (tokens if tokens is not None else max(n_p + n_n, 1))


@torch.no_grad()
def mean_vector(model: SkipThought, units: torch.Tensor, limit: int) -> torch.Tensor:
    """The mean unnormalised sentence vector ``[out_dim]`` (float32) of up to ``limit`` of the unit rows
    ``units [U, T]``, evenly spaced (no random draw: a resumed run stores the same vector)."""
    model.eval()
    pick = torch.linspace(0, len(units) - 1, min(limit, len(units))).round().long().unique()  # [N]
    rows = units[pick.to(units.device)]  # [N, T]
    lengths = row_lengths(rows)  # [N]
    order = torch.argsort(lengths, descending=True)  # similar lengths batched together
    total = torch.zeros(model.out_dim, dtype=torch.float64, device=rows.device)
    for lo in range(0, len(order), 256):
        idx = order[lo:lo + 256]
        width = int(lengths[idx].max()) + 1  # the longest row's tokens + EOS
        total += model.encode(rows[idx, :width], normalize=False).double().sum(dim=0)
    return (total / len(rows)).float()


# --------------------------------------------------------------------------- vocabulary expansion
def fit_linear_map(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``W [a, b]`` minimising ``||source W - target||^2`` (least squares) for rows ``source [n, a]``,
    ``target [n, b]`` of the same words."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape[0] != target.shape[0]:
        raise ValueError(f"{source.shape[0]} source rows, {target.shape[0]} target rows")
    if source.shape[0] < source.shape[1]:
        raise ValueError(f"a linear map from {source.shape[1]} dimensions needs at least that many shared words, "
                         f"got {source.shape[0]}")
    w, *_ = np.linalg.lstsq(source, target, rcond=None)
    return w


class ExpandedVocabulary:
    """Encoder embeddings for every word2vec word: trained rows where the encoder has the word, else ``x W``."""

    def __init__(self, w2v_words: Sequence[str], w2v_vectors: np.ndarray, enc_tokens: Sequence[str],
                 enc_embedding: np.ndarray, skip: Sequence[str] = ()) -> None:
        enc_index = {t: i for i, t in enumerate(enc_tokens) if t not in set(skip)}
        shared = [(i, enc_index[w]) for i, w in enumerate(w2v_words) if w in enc_index]
        if not shared:
            raise ValueError("word2vec and the encoder share no word")
        src = np.asarray(w2v_vectors)[[i for i, _ in shared]]  # [n, a]
        dst = np.asarray(enc_embedding)[[j for _, j in shared]]  # [n, b]
        self.map = fit_linear_map(src, dst)
        self.n_shared = len(shared)
        self.extra = {w: i for i, w in enumerate(w2v_words) if w not in enc_index}
        self._vectors = np.asarray(w2v_vectors, dtype=np.float64)

    def vector(self, word: str) -> np.ndarray | None:
        """The mapped embedding ``[b]`` of a word the encoder lacks (None: word2vec lacks it too)."""
        i = self.extra.get(word)
        return None if i is None else self._vectors[i] @ self.map
