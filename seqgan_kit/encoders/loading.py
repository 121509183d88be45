"""Open an encoder run directory (``algorithm = "word2vec"`` or ``"skipthought"``) as a sentence encoder.

:func:`load_encoder` returns an object with

- ``embed(texts) -> np.ndarray [N, d]`` (float64), ``dim``, ``kind``, ``corpus``, ``run_dir``;
- ``describe()``: what every reported value names (kind, run, dimension, pooling, corpus, tokenizer);
- ``tokenize(text)`` and ``known`` (the tokens it has a vector for), used by :func:`check_coverage` to refuse
  text of another corpus or tokenizer;
- ``training_sentences()``: the corpus's training examples (novelty, ``encode --nearest``).

A word2vec run embeds with ``pooling = "sif"`` (default; the principal component stored with the run) or
``"mean"``. A Skip-Thought run embeds with its encoder: the final GRU state, minus the run's mean training vector
when the run stored one (``center``, see :mod:`.skipthought`), L2-normalised; ``expand = W2V_RUN`` adds vocabulary
expansion: words the encoder never saw but word2vec knows get ``x W`` (a least-squares linear map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict
from ..data.corpus import encode_examples, load_lines, load_text_pipeline
from ..data.data_config import DataConfig
from ..data.tokenization import SPECIALS, UNK
from ..errors import UserError
from ..models.registry import checked_build
from ..runs.checkpoint import load_checkpoint, load_module
from ..runs.rundir import CHECKPOINT, RunDir
from ..tasks.text import TOKENIZER_DIR
from .sentence import mean_embed, sif_embed
from .word2vec import VECTORS_FILE, WordVectors

ENCODER_ALGORITHMS = ("word2vec", "skipthought")
POOLINGS = ("sif", "mean")
MIN_COVERAGE = 0.5
"""Text whose tokens the encoder knows less than this share of is refused as another corpus/tokenizer."""


class _EncoderBase:
    kind = ""

    def __init__(self, run_dir: Path, cfg: Any, tokenizer: Any) -> None:
        self.run_dir = run_dir
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.corpus = cfg.data.name
        self.lowercase = cfg.data.lowercase

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.tokenize(text)

    def training_sentences(self) -> list[str]:
        """The encoder corpus's training examples (read from its ``data.dir``)."""
        return load_lines(self.cfg.data, self.cfg.seed)[0]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "run": str(self.run_dir), "dim": self.dim, "corpus": self.corpus,
                "tokenizer": self.cfg.data.tokenizer}

    @property
    def label(self) -> str:
        d = self.describe()
        extra = f", {d['pooling']} pooling" if "pooling" in d else ""
        return f"{d['kind']} {d['run']} ({d['dim']}-d{extra}, corpus {d['corpus']})"


class WordVectorEncoder(_EncoderBase):
    """Mean or SIF pooling of a word2vec run's vectors."""

    kind = "word2vec"

    def __init__(self, run_dir: Path, cfg: Any, tokenizer: Any, vectors: WordVectors, pooling: str = "sif") -> None:
        super().__init__(run_dir, cfg, tokenizer)
        if pooling not in POOLINGS:
            raise UserError(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")
        self.vectors = vectors
        self.pooling = pooling
        self.known = set(vectors.words)
        self.dim = vectors.dim

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pooling": self.pooling}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        tokens = [self.tokenize(t) for t in texts]
        v = self.vectors
        if self.pooling == "mean":
            return mean_embed(tokens, v.index, v.vectors)
        a = float(v.meta.get("sif_a", 1e-3))
        return sif_embed(tokens, v.index, v.vectors, v.counts, a=a, pc=v.sif_pc)


class SkipThoughtEncoder(_EncoderBase):
    """The encoder of a Skip-Thought run (optionally with vocabulary expansion)."""

    kind = "skipthought"

    def __init__(self, run_dir: Path, cfg: Any, tokenizer: Any, vocab: Any, model: Any, expansion: Any = None,
                 batch_size: int = 256, center: torch.Tensor | None = None) -> None:
        super().__init__(run_dir, cfg, tokenizer)
        self.vocab = vocab
        self.model = model.eval()
        self.expansion = expansion
        self.center = center
        """``[out_dim]``: the mean training vector, subtracted before L2 normalisation (None: not stored)."""
        self.batch_size = batch_size
        self.known = {t for t in vocab.tokens if t not in SPECIALS}
        if expansion is not None:
            self.known |= set(expansion.extra)
        self.dim = model.out_dim

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), "bidirectional": self.model.bidirectional, "centred": self.center is not None}
        if self.expansion is not None:
            out["expanded_words"] = len(self.expansion.extra)
        return out

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        tokens = [self.tokenize(t)[: self.cfg.data.max_tokens] for t in texts]
        rows, _ = encode_examples(tokens, self.vocab, self.cfg.data.max_tokens)  # [N, T]
        lengths = torch.tensor([len(t) + 1 for t in tokens])  # [N] tokens + EOS
        order = torch.argsort(lengths, descending=True, stable=True)  # similar lengths batched together
        out = torch.empty(len(texts), self.dim, dtype=torch.float64)
        weight = self.model.embedding.weight
        for lo in range(0, len(texts), self.batch_size):
            idx = order[lo:lo + self.batch_size]
            t = int(lengths[idx].max())
            batch = rows[idx, :t].to(weight.device)  # [B, t]
            emb = self.model.embedding(batch)  # [B, t, E]
            if self.expansion is not None:
                self._expand_unknown(emb, batch, idx, tokens)
            h = self.model.encode_embedded(emb, lengths[idx].to(weight.device), normalize=False)  # [B, C]
            if self.center is not None:
                h = h - self.center.to(h)
            out[idx] = torch.nn.functional.normalize(h, dim=1).double().cpu()
        return out.numpy()

    def _expand_unknown(self, emb: torch.Tensor, batch: torch.Tensor, idx: torch.Tensor,
                        tokens: list[list[str]]) -> None:
        """Give the UNK positions of ``batch [B, t]`` their expanded vectors in ``emb [B, t, E]`` (in place).

        Only the UNK positions are visited (the vectors come from a string lookup)."""
        rows = idx.tolist()
        hits = [(b, pos, self.expansion.vector(tokens[rows[b]][pos]))
                for b, pos in (batch == UNK).nonzero().tolist()]  # [(row, position, vector or None)]
        hits = [(b, pos, vec) for b, pos, vec in hits if vec is not None]
        if hits:
            where = torch.tensor([(b, pos) for b, pos, _ in hits], device=emb.device)  # [K, 2]
            vectors = torch.as_tensor(np.stack([vec for _, _, vec in hits]), dtype=emb.dtype, device=emb.device)
            emb[where[:, 0], where[:, 1]] = vectors  # [K, E]


@dataclass
class EncoderRunConfig:
    """What an encoder needs of its run's ``config.toml``: the algorithm, seed, corpus and the algorithm's table
    (read as plain data, so loading an encoder never needs the training layer)."""

    algorithm: str
    seed: int
    data: DataConfig
    table: dict[str, Any]


def _run_config(run_dir: Path) -> EncoderRunConfig:
    raw = RunDir(run_dir).read_config()
    algorithm = str(raw.get("algorithm", ""))
    return EncoderRunConfig(algorithm, int(raw.get("seed", 0)), from_dict(DataConfig, raw.get("data", {}), "data."),
                            dict(raw.get(algorithm, {})) if isinstance(raw.get(algorithm), dict) else {})


def load_encoder(path: str | Path, pooling: str = "sif", expand: str | Path | None = None) -> Any:
    """The encoder of a word2vec or skipthought run directory (see the module docstring)."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"encoder run directory not found: {run_dir}")
    cfg = _run_config(run_dir)
    if cfg.algorithm not in ENCODER_ALGORITHMS:
        raise UserError(f"{run_dir} is a {cfg.algorithm!r} run, not an encoder run (algorithm word2vec or "
                        f"skipthought)")
    tokenizer, vocab = load_text_pipeline(cfg.data, run_dir / TOKENIZER_DIR)
    if cfg.algorithm == "word2vec":
        if not (run_dir / VECTORS_FILE).is_file():
            raise UserError(f"{run_dir} has no {VECTORS_FILE} yet: is the word2vec run finished?")
        if expand:
            raise UserError("--expand applies to a skipthought encoder, not to word2vec")
        return WordVectorEncoder(run_dir, cfg, tokenizer, WordVectors.load(run_dir), pooling)
    from .skipthought import CENTER_KEY, MODEL_FILE, ExpandedVocabulary, SkipThought

    file = run_dir / MODEL_FILE
    if not file.is_file():
        file = run_dir / CHECKPOINT
    tensors, meta = load_checkpoint(file)
    args = meta.get("skipthought") or meta.get("config", {}).get("skipthought")
    if "skipthought" in meta:
        model = checked_build(SkipThought, args, "encoder", str(file))
    else:  # a full checkpoint of an unfinished run: rebuild from its config
        c = cfg.table
        model = SkipThought(len(vocab), c["emb_dim"], c["dim"], c["bidirectional"], c["conditioning"])
    load_module("encoder", model, tensors, file)
    if model.vocab_size != len(vocab):
        raise UserError(f"{file}: its encoder has {model.vocab_size} tokens, {run_dir / TOKENIZER_DIR} has "
                        f"{len(vocab)}")
    expansion = None
    if expand:
        w2v = load_encoder(expand, pooling="mean")
        expansion = ExpandedVocabulary(w2v.vectors.words, w2v.vectors.vectors, vocab.tokens,
                                       model.embedding.weight.detach().cpu().numpy(), skip=SPECIALS)
    center = tensors.get(CENTER_KEY)
    if center is not None and (center.shape != (model.out_dim,) or not torch.isfinite(center).all()):
        raise UserError(f"{file}: {CENTER_KEY} must be {model.out_dim} finite numbers")
    return SkipThoughtEncoder(run_dir, cfg, tokenizer, vocab, model, expansion, center=center)


def check_coverage(encoder: Any, texts: Sequence[str], source: str) -> float:
    """The share of the texts' tokens the encoder knows; UserError below :data:`MIN_COVERAGE` (another corpus
    or tokenizer than the encoder's)."""
    total = known = 0
    for text in texts:
        for tok in encoder.tokenize(text):
            total += 1
            known += tok in encoder.known
    share = known / total if total else 0.0
    if share < MIN_COVERAGE:
        raise UserError(f"{source}: only {share:.0%} of its tokens are known to the encoder "
                        f"({encoder.kind}, corpus {encoder.corpus}, {encoder.cfg.data.tokenizer} tokens); text of "
                        f"another corpus or tokenizer? (need at least {MIN_COVERAGE:.0%})")
    return share
