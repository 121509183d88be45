"""A trained text model: generator + tokenizer + vocabulary of one run directory, for sampling and evaluation.

``TextModel.load(RUN_DIR)`` reads the run's resolved ``config.toml``, its ``tokenizer/`` folder (``vocab.json``
and, for sentencepiece, ``spm.model``) and the latest checkpoint. ``TextModel.load(RUN_DIR/FILE.safetensors)``
takes another checkpoint of the run (e.g. ``generator_mle.safetensors``, the generator before adversarial
training). A checkpoint is refused when its vocabulary is not the run directory's (another corpus).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_module
from .config import ExperimentConfig
from .corpus import decode_rows, load_lines, load_text_pipeline
from .errors import UserError
from .generator import Generator
from .metrics.text import read_lines
from .metrics.text import tokenizer as text_tokenizer
from .rundir import CHECKPOINT, RunDir
from .tokenization import SPECIALS, Tokenizer, Vocab

TOKENIZER_DIR = "tokenizer"
"""Run-directory folder holding ``vocab.json`` (and ``spm.model`` for sentencepiece)."""


def load_generator(path: str | Path) -> tuple[Generator, dict, Path]:
    """A generator from a checkpoint file or a run directory's latest checkpoint: ``(generator, meta, file)``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    tensors, meta = load_checkpoint(path)
    try:
        gen = Generator(**meta["modules"]["generator"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: checkpoint holds no generator description") from None
    load_module("generator", gen, tensors, path)
    gen.eval()
    return gen, meta, path


def eval_splitter(cfg: ExperimentConfig, tokenizer: Tokenizer) -> Callable[[str], list[str]]:
    """How BLEU splits text for this corpus: ``data.eval_tokenizer``, else the model's own tokenizer."""
    mode = cfg.data.eval_tokenizer
    return text_tokenizer(mode) if mode else tokenizer.tokenize


class TextModel:
    """Generator, tokenizer and vocabulary of one text run (see the module docstring)."""

    def __init__(self, run_dir: Path, cfg: ExperimentConfig, generator: Generator, tokenizer: Tokenizer,
                 vocab: Vocab) -> None:
        self.run_dir = run_dir
        self.cfg = cfg
        self.generator = generator
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.name = run_dir.name
        self.corpus = cfg.data.name
        self.vocab_fingerprint = vocab.fingerprint
        self.bleu_orders = list(cfg.data.bleu_orders)
        self._split = eval_splitter(cfg, tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        """From a run directory, or a checkpoint file inside one (UserError if it is not a text run)."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"not found: {path}")
        run_dir = path if path.is_dir() else path.parent
        cfg = RunDir(run_dir).read_config()
        if cfg.task != "text":
            raise UserError(f"{run_dir} is a {cfg.task} run, not a text run: it has no tokenizer to decode with")
        tokenizer, vocab = load_text_pipeline(cfg.data, run_dir / TOKENIZER_DIR)
        generator, meta, file = load_generator(path)
        theirs = meta.get("vocab") or {}
        if theirs.get("fingerprint") != vocab.fingerprint or generator.vocab_size != len(vocab):
            raise UserError(f"{file} was trained on corpus {theirs.get('corpus')!r} with another vocabulary "
                            f"({generator.vocab_size} tokens) than the run directory {run_dir} "
                            f"({cfg.data.name!r}, {len(vocab)} tokens)")
        return cls(run_dir, cfg, generator, tokenizer, vocab)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_ids(self, n: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
        """``n`` sampled sequences ``[n, T]`` (EOS then PAD), reproducible from ``seed``."""
        rng = torch.Generator(device=self.generator.device).manual_seed(seed)
        return self.generator.sample(n, temperature=temperature, generator=rng,
                                     batch_size=self.cfg.eval.batch_size)

    def decode(self, seqs: torch.Tensor) -> list[str]:
        """``[N, T]`` ids -> N detokenized texts (up to EOS)."""
        return decode_rows(seqs, self.vocab, self.tokenizer)

    def sample_text(self, n: int, temperature: float = 1.0, seed: int = 0) -> list[str]:
        """``n`` detokenized samples (Chinese without spaces, English detokenized)."""
        return self.decode(self.sample_ids(n, temperature, seed))

    # ------------------------------------------------------------------ evaluation text
    def eval_tokens(self, texts: list[str]) -> list[list[str]]:
        """Split texts the way BLEU does for this corpus (``data.eval_tokenizer``)."""
        return [self._split(t) for t in texts]

    @property
    def vocab_tokens(self) -> set[str]:
        """The vocabulary in eval-token space (decoded tokens split like BLEU text), specials excluded."""
        tokens = [t for t in self.vocab.tokens if t not in SPECIALS]
        return {piece for t in tokens for piece in self._split(self.tokenizer.detokenize([t]))}

    def read_references(self, path: str | Path | None = None, limit: int | None = None) -> list[list[str]]:
        """Tokenized references: a file (one per line, strict UTF-8) or, if ``path`` is None, the run's test
        split (read from ``data.dir`` as configured; the corpus must still be there)."""
        if path is None:
            lines = load_lines(self.cfg.data, seed=self.cfg.seed)[1]  # as in training: same seed, same split
        else:
            lines = read_lines(path)
        if self.cfg.data.lowercase:
            lines = [line.lower() for line in lines]
        refs = [r for r in self.eval_tokens(lines[:limit] if limit else lines) if r]
        if not refs:
            raise UserError(f"no reference sentences in {path or 'the test split'}")
        return refs
