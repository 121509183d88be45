"""``algorithm = "word2vec"``: word vectors of a corpus card's training split, as an ordinary run.

The corpus is read as for any text run (``[data]``, the card's tokenizer; a sentencepiece model is trained into
``RUN/tokenizer/`` first), and every training example is tokenized in full (no ``max_tokens`` cut). gensim trains
skip-gram with negative sampling (``[word2vec]``; gensim's defaults unless set). The run writes
``word2vec.safetensors`` + ``word2vec.json`` (no pickle; see :mod:`seqgan_kit.encoders.word2vec`), one metrics
record and ``checkpoint.safetensors``. The record's ``loss_per_token`` is gensim's training loss (summed over every
trained pair and epoch) divided by the tokens it was given, ``epochs * n_tokens``.

The run has one phase, ``word2vec``, that cannot stop half-way and continue: gensim's training state is not
saved. A run interrupted during training restarts the phase from the beginning on ``--resume`` and says so;
with ``workers = 1`` the restarted training gives the same vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError, positive
from ..data.corpus import load_lines
from ..encoders.sentence import SIF_A, first_component, pool, sif_weights
from ..encoders.word2vec import train_word2vec
from ..errors import require_extra
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

PHASE = "word2vec"
PC_SENTENCES = 20000
"""At most this many training sentences (the first ones) fix the SIF principal component."""


@dataclass
class Word2VecConfig:
    """The ``[word2vec]`` table (gensim's names and defaults; skip-gram with negative sampling)."""

    vector_size: int = 100
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    min_count: int = 5
    epochs: int = 5
    alpha: float = 0.025
    min_alpha: float = 0.0001
    workers: int = 1
    """gensim worker threads; 1 makes the vectors reproducible (same seed, same vectors)."""
    sif_a: float = SIF_A
    """SIF weight parameter ``a`` (Arora et al. 2017), stored with the vectors."""

    def validate(self) -> None:
        positive(self, "vector_size", "window", "negative", "min_count", "epochs", "alpha", "min_alpha", "workers",
                 "sif_a")
        if self.sample < 0:
            raise ConfigError("sample", f"must be >= 0, got {self.sample}")


def training_tokens(exp: Experiment) -> list[list[str]]:
    """Every training example of the run's corpus, tokenized in full by the run's tokenizer."""
    train, _ = load_lines(exp.cfg.data, exp.cfg.seed)
    tokenizer = exp.task.tokenizer
    return [t for t in (tokenizer.tokenize(line) for line in train) if t]


@register_algorithm("word2vec", config=Word2VecConfig, pretrain=False, uses_generator=False, distributed=False)
class Word2VecTrainer(Trainer):
    """Trains word2vec in one phase (see the module docstring); it builds no generator or discriminator.

    Its single unit cannot be resumed half-way, so it runs outside :func:`~seqgan_kit.train.trainer.run_units`.
    """

    requires = {}

    def __init__(self, exp: Experiment) -> None:
        super().__init__(exp)
        self.cfg: Word2VecConfig = exp.cfg.algo

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        if cfg.task != "text":
            raise ConfigError("task", "algorithm 'word2vec' trains on a text corpus: set task = \"text\"")
        require_extra("gensim.models", "encoders", "algorithm = \"word2vec\"")  # missing: one line, before any work

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(PHASE, self.run)]

    def run(self, done: int) -> None:
        exp, cfg = self.exp, self.cfg
        if done >= 1:
            print(f"[{PHASE}] already finished", flush=True)
            return
        if exp.state.get("word2vec_started"):
            print(f"[{PHASE}] the interrupted run restarts its single phase from the beginning: gensim training "
                  f"cannot continue from the middle (with workers = 1 and seed {exp.cfg.seed} the vectors come "
                  f"out the same)", flush=True)
        exp.state["word2vec_started"] = True
        exp.save(PHASE, 0)
        sentences = training_tokens(exp)
        vectors, stats = train_word2vec(
            sentences, vector_size=cfg.vector_size, window=cfg.window, negative=cfg.negative, sample=cfg.sample,
            min_count=cfg.min_count, epochs=cfg.epochs, seed=exp.cfg.seed, workers=cfg.workers, alpha=cfg.alpha,
            min_alpha=cfg.min_alpha)
        x, _ = pool(sentences[:PC_SENTENCES], vectors.index, vectors.vectors, sif_weights(vectors.counts, cfg.sif_a))
        vectors.sif_pc = first_component(x)
        vectors.meta = {"corpus": exp.cfg.data.name, "tokenizer": exp.cfg.data.tokenizer,
                        "lowercase": exp.cfg.data.lowercase, "vocab_fingerprint": exp.task.vocab.fingerprint,
                        "sif_a": cfg.sif_a, "seed": exp.cfg.seed,
                        "params": {k: getattr(cfg, k) for k in ("vector_size", "window", "negative", "sample",
                                                                 "min_count", "epochs", "alpha", "min_alpha",
                                                                 "workers")}}
        vectors.save(exp.run_dir.path)
        known = float(np.mean([t in vectors.index for s in sentences for t in s]))
        exp.log(PHASE, "epoch", cfg.epochs, cfg.epochs,
                {"loss_per_token": stats["loss"] / max(stats["n_tokens"] * cfg.epochs, 1),
                 "vocab_words": stats["vocab_words"], "n_sentences": stats["n_sentences"],
                 "n_tokens": stats["n_tokens"], "token_coverage": known, "train_s": round(stats["train_s"], 3)})
        exp.save(PHASE, 1)
