"""word2vec vectors: training with gensim (skip-gram, negative sampling) and storage without pickle.

gensim's own ``save`` pickles the model, which this package never reads or writes. A word2vec run keeps::

    RUN/word2vec.safetensors   "vectors" [W, d] float32, "counts" [W] int64 (training-corpus counts),
                               "sif_pc" [d] float64 (the SIF first principal component of the training sentences)
    RUN/word2vec.json          {"format", "version", "words": [W strings, most frequent first], "params", ...}

Reproducibility: gensim seeds each word's initial vector from ``hash(word + str(seed))``; Python's string hash
changes between processes (PYTHONHASHSEED), so :func:`train_word2vec` passes a stable hash
(:func:`stable_hash`). With ``workers = 1`` two trainings with the same seed then give identical vectors.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError, require_extra
from ..files import atomic_write

VECTORS_FILE = "word2vec.safetensors"
WORDS_FILE = "word2vec.json"
FORMAT = "seqgan-kit/word2vec"
VERSION = 1


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (gensim's ``hashfxn``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass
class WordVectors:
    """Words (most frequent first), their training counts and vectors ``[W, d]``; ``sif_pc`` optional."""

    words: list[str]
    counts: np.ndarray
    vectors: np.ndarray
    sif_pc: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.words) != self.vectors.shape[0] or len(self.words) != len(self.counts):
            raise ValueError(f"{len(self.words)} words, {len(self.counts)} counts, {self.vectors.shape[0]} vectors")
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def save(self, folder: str | Path) -> None:
        """Write ``word2vec.safetensors`` and ``word2vec.json`` into ``folder`` (atomically, no pickle)."""
        from ..runs.checkpoint import save_checkpoint

        folder = Path(folder)
        tensors = {"vectors": torch.from_numpy(np.ascontiguousarray(self.vectors, dtype=np.float32)),
                   "counts": torch.from_numpy(np.asarray(self.counts, dtype=np.int64))}
        if self.sif_pc is not None:
            tensors["sif_pc"] = torch.from_numpy(np.asarray(self.sif_pc, dtype=np.float64))
        save_checkpoint(folder / VECTORS_FILE, tensors, {"kind": "word2vec", "words_file": WORDS_FILE})
        doc = {"format": FORMAT, "version": VERSION, "size": len(self.words), "dim": self.dim, **self.meta,
               "words": self.words}
        atomic_write(folder / WORDS_FILE, json.dumps(doc, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> WordVectors:
        """Read what :meth:`save` wrote; UserError for a missing or damaged pair of files."""
        from ..runs.checkpoint import load_checkpoint

        folder = Path(folder)
        tensors, _ = load_checkpoint(folder / VECTORS_FILE)
        path = folder / WORDS_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path} is missing (the word list of {folder / VECTORS_FILE})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise UserError(f"{path} is damaged: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("words"), list):
            raise UserError(f"{path} is not a seqgan-kit word2vec word list")
        words = doc.pop("words")
        vectors = tensors.get("vectors")
        if vectors is None or vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise UserError(f"{folder / VECTORS_FILE} does not match {path} ({len(words)} words)")
        pc = tensors.get("sif_pc")
        meta = {k: v for k, v in doc.items() if k not in ("format", "version", "size", "dim")}
        return cls(words, tensors["counts"].numpy(), vectors.numpy(), None if pc is None else pc.numpy(), meta)


def train_word2vec(sentences: Sequence[Sequence[str]], vector_size: int = 100, window: int = 5,
                   negative: int = 5, sample: float = 1e-3, min_count: int = 5, epochs: int = 5, seed: int = 1,
                   workers: int = 1, alpha: float = 0.025, min_alpha: float = 0.0001) -> tuple[WordVectors, dict]:
    """Skip-gram with negative sampling on tokenized ``sentences``; returns the vectors and training stats
    (``train_s``, ``loss``, ``n_sentences``, ``n_tokens``)."""
    Word2Vec = require_extra("gensim.models", "encoders", "word2vec training (algorithm = \"word2vec\")").Word2Vec

    sentences = [list(s) for s in sentences if s]
    if not sentences:
        raise UserError("word2vec: no sentence with a token to train on")
    start = time.perf_counter()
    model = Word2Vec(sentences=sentences, vector_size=vector_size, window=window, min_count=min_count, sg=1, hs=0,
                     negative=negative, sample=sample, epochs=epochs, seed=seed, workers=workers, alpha=alpha,
                     min_alpha=min_alpha, hashfxn=stable_hash, compute_loss=True)
    seconds = time.perf_counter() - start
    words = list(model.wv.index_to_key)
    if not words:
        raise UserError(f"word2vec: no token occurs min_count={min_count} times; lower word2vec.min_count")
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words], dtype=np.int64)
    vectors = np.array(model.wv.vectors, dtype=np.float32)
    stats = {"train_s": seconds, "loss": float(model.get_latest_training_loss()), "n_sentences": len(sentences),
             "n_tokens": sum(map(len, sentences)), "vocab_words": len(words)}
    return WordVectors(words, counts, vectors), stats
