"""A trained text model: generator + tokenizer + vocabulary of one run directory, for sampling and evaluation.

``TextModel.load(RUN_DIR)`` reads the run's resolved ``config.toml``, its ``tokenizer/`` folder (``vocab.json``
and, for sentencepiece, ``spm.model``) and the latest checkpoint. ``TextModel.load(RUN_DIR/FILE.safetensors)``
takes another checkpoint of the run (e.g. ``generator_mle.safetensors``, the generator before adversarial
training). A checkpoint is refused when its vocabulary is not the run directory's (another corpus).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from ..config import from_dict
from ..data.corpus import decode_rows, encode_examples, load_lines, load_text_pipeline, prepare_text_data
from ..data.data_config import DataConfig
from ..data.tokenization import PAD, SPECIALS, Tokenizer, Vocab, eval_tokenizer
from ..errors import UserError
from ..files import read_lines
from ..metrics.nll import sequence_nll_sum
from ..models.generator import SequenceGenerator
from ..tasks.evaluation import EvalConfig
from ..tasks.text import TOKENIZER_DIR
from .checkpoint import load_model
from .rundir import RunDir


class TextModel:
    """Generator, tokenizer and vocabulary of one text run (see the module docstring)."""

    def __init__(self, run_dir: Path, data: DataConfig, eval_cfg: EvalConfig, seed: int,
                 generator: SequenceGenerator, tokenizer: Tokenizer, vocab: Vocab) -> None:
        self.run_dir = run_dir
        self.data = data
        self.eval_cfg = eval_cfg
        self.seed = seed
        self.generator = generator
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.name = run_dir.name
        self.corpus = data.name
        self.vocab_fingerprint = vocab.fingerprint
        self.bleu_orders = list(data.bleu_orders)
        self._split = eval_tokenizer(data.eval_tokenizer, tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        """From a run directory, or a checkpoint file inside one (UserError if it is not a text run)."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"not found: {path}")
        run_dir = path if path.is_dir() else path.parent
        raw = RunDir(run_dir).read_config()
        if raw.get("task") != "text":
            raise UserError(f"{run_dir} is a {raw.get('task')} run, not a text run: it has no tokenizer to decode "
                            f"with")
        data = from_dict(DataConfig, raw.get("data", {}), "data.")
        eval_cfg = from_dict(EvalConfig, raw.get("eval", {}), "eval.")
        tokenizer, vocab = load_text_pipeline(data, run_dir / TOKENIZER_DIR)
        generator, meta, file = load_model(path, "generator")
        theirs = meta.get("vocab") or {}
        if theirs.get("fingerprint") != vocab.fingerprint or generator.vocab_size != len(vocab):
            raise UserError(f"{file} was trained on corpus {theirs.get('corpus')!r} with another vocabulary "
                            f"({generator.vocab_size} tokens) than the run directory {run_dir} "
                            f"({data.name!r}, {len(vocab)} tokens)")
        return cls(run_dir, data, eval_cfg, int(raw.get("seed", 0)), generator, tokenizer, vocab)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_ids(self, n: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
        """``n`` sampled sequences ``[n, T]`` (EOS then PAD), reproducible from ``seed``."""
        rng = torch.Generator(device=self.generator.device).manual_seed(seed)
        return self.generator.sample(n, temperature=temperature, generator=rng,
                                     batch_size=self.eval_cfg.batch_size)

    @torch.no_grad()
    def iter_sample_ids(self, n: int, temperature: float = 1.0, seed: int = 0) -> Iterator[torch.Tensor]:
        """The rows of :meth:`sample_ids` (the same draws, the same order) in chunks of ``eval.batch_size``, so
        a huge ``n`` never sits in memory at once."""
        rng = torch.Generator(device=self.generator.device).manual_seed(seed)
        chunk = self.eval_cfg.batch_size
        for lo in range(0, n, chunk):
            rows = min(chunk, n - lo)
            yield self.generator.sample(rows, temperature=temperature, generator=rng, batch_size=chunk)

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

    def test_ids(self) -> torch.Tensor:
        """The run's test split encoded exactly as training encoded it: ``[M, T]`` int64 (ids, EOS, then PAD).

        Read from ``data.dir`` as configured (the corpus must still be there), with the run's own vocabulary.
        """
        return prepare_text_data(self.data, self.run_dir / TOKENIZER_DIR, self.seed, log=lambda _: None).test

    def encode(self, sentences: list[str]) -> torch.Tensor:
        """Sentences as training encodes them: ``[N, T]`` int64 (lowercased when the run lowercases, cut to
        ``data.max_tokens``, then EOS and PAD, or PAD only in ``pad`` text; tokens outside the vocabulary read
        as UNK)."""
        lines = [s.lower() for s in sentences] if self.data.lowercase else list(sentences)
        tokens = [self.tokenizer.tokenize(s) for s in lines]
        return encode_examples(tokens, self.vocab, self.data.max_tokens, self.data.ending)[0]

    def nll_test(self, rows: torch.Tensor | None = None) -> float:
        """NLL_test as the run's evaluations compute it: the mean per-token NLL of ``rows [N, T]`` (default: the
        test split, :meth:`test_ids`), padding excluded: up to and including EOS, or in ``pad`` text up to and
        including the first PAD (the PAD that ends the sentence)."""
        gen = self.generator
        rows = self.test_ids() if rows is None else rows
        through = PAD if self.data.ending == "pad" else None
        total, count = sequence_nll_sum(gen, rows.to(gen.device), self.eval_cfg.batch_size, through)
        return total / max(count, 1)

    def read_references(self, path: str | Path | None = None, limit: int | None = None) -> list[list[str]]:
        """Tokenized references: a file (one per line, strict UTF-8) or, if ``path`` is None, the run's test
        split (read from ``data.dir`` as configured; the corpus must still be there)."""
        if path is None:
            lines = load_lines(self.data, seed=self.seed)[1]  # as in training: same seed, same split
        else:
            lines = read_lines(path)
        if self.data.lowercase:
            lines = [line.lower() for line in lines]
        refs = [r for r in self.eval_tokens(lines[:limit] if limit else lines) if r]
        if not refs:
            raise UserError(f"no reference sentences in {path or 'the test split'}")
        return refs
