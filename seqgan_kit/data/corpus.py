"""Real-text data: corpus lines -> tokenizer + vocabulary -> padded id tensors (``task = "text"``).

Encoding convention (the generator, discriminator and metrics rely on it)::

    data.ending = "eos" (default):
    example -> token ids (the first max_tokens if longer: counted and reported) -> + EOS -> PAD (0) to max_tokens + 1
    data.ending = "pad" (RelGAN's fixed-length text):
    example -> token ids (the first max_tokens if longer: counted and reported) -> PAD (0) to max_tokens

so an ``eos`` row ``[max_tokens + 1]`` int64 holds exactly one EOS, PAD only after it, and never PAD or BOS before
it; a ``pad`` row ``[max_tokens]`` holds no EOS and no BOS, and its PADs (none for an example of max_tokens tokens) are
the sentence's ending, an ordinary token the generator learns to emit (RelGAN's ``text_to_code`` pads with the
id after the last word the same way). Either way a row's length is the number of tokens before its first EOS or
PAD (:func:`row_lengths`).

Sources: two UTF-8 files with one example per line (``data.dir`` + ``data.train``/``data.test``), or a Hugging
Face ``datasets`` dataset (``data.hf_dataset``: a folder written by ``save_to_disk``, a folder of
csv/json/parquet files, or a hub id). Lines are stripped and blank ones skipped (counted). Without a test
split, ``data.test_fraction`` of the training lines is held out with a seeded shuffle.

``data.segment = "sentence"`` splits each line (paragraph) at :data:`SENTENCE_END`: one or more ``.``, ``!``
or ``?`` (plus closing quotes/brackets) followed by whitespace and an uppercase letter, digit, quote or
opening bracket. The punctuation stays with its sentence. It does not split after a title abbreviation
(:data:`ABBREVIATIONS`) or initials (``W.``, ``U.S.``, ``D.C.``), so a sentence that ends in ``U.S.`` stays
joined to the next one.

The run directory keeps ``vocab.json`` (and ``spm.model`` for sentencepiece): a resumed run and the sampling
commands reuse them, so token ids never change under a checkpoint.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..device import check_fits
from ..errors import UserError, require_extra
from ..files import read_lines
from .data_config import ENDINGS, DataConfig
from .tokenization import (
    EOS,
    PAD,
    UNK,
    SentencePieceTokenizer,
    Tokenizer,
    Vocab,
    make_tokenizer,
    spm_model_path,
    train_sentencepiece,
)

VOCAB_FILE = "vocab.json"
MAX_TOKENS_KEY = "data.max_tokens"
"""The recipe key that bounds an example's length (named by the truncation warning)."""
TRUNCATION_WARNING = 0.01
"""Warn (stderr) when more than this share of a corpus's examples is truncated."""

SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9])")
"""End of a sentence inside a paragraph (see the module docstring)."""
ABBREVIATIONS = frozenset({
    "Mr.", "Mrs.", "Ms.", "Dr.", "Jr.", "Sr.", "St.", "Mt.", "Ft.", "Gov.", "Sen.", "Rep.", "Gen.", "Lt.",
    "Col.", "Sgt.", "Capt.", "Prof.", "Rev.", "vs.",
})
"""Words after which :data:`SENTENCE_END` does not split."""
_INITIALS = re.compile(r"(?:[A-Z]\.)+")
_QUOTES = "\"'()[]"


# --------------------------------------------------------------------------- lines
def split_sentences(text: str) -> list[str]:
    """The sentences of one paragraph (see :data:`SENTENCE_END`), stripped, punctuation kept."""
    out: list[str] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        word = text[start:match.end()].rsplit(None, 1)[-1].strip(_QUOTES)
        if word in ABBREVIATIONS or _INITIALS.fullmatch(word):
            continue
        out.append(text[start:match.end()].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _split_path(cfg: DataConfig, name: str) -> Path:
    """``data.dir / name``, or ``name`` alone when ``data.dir`` is empty (relative to the CWD)."""
    path = Path(name).expanduser()
    return Path(cfg.dir).expanduser() / path if cfg.dir else path


def _nonblank(lines: Sequence[str], source: str) -> tuple[list[str], int]:
    """Stripped non-blank lines and the number of blank ones; UserError when none is left."""
    kept = [s for s in (line.strip() for line in lines) if s]
    if not kept:
        raise UserError(f"{source} has no text: all of its {len(lines):,} lines are blank")
    return kept, len(lines) - len(kept)


def _hold_out(lines: list[str], fraction: float, seed: int, source: str) -> tuple[list[str], list[str]]:
    """Split ``lines`` into (train, test) with a seeded shuffle; both keep the original order."""
    if len(lines) < 2:
        raise UserError(f"{source}: cannot hold out a test split from {len(lines)} example(s); give data.test")
    n_test = min(len(lines) - 1, max(1, round(len(lines) * fraction)))
    order = list(range(len(lines)))
    random.Random(f"seqgan-kit holdout {seed}").shuffle(order)
    held = set(order[:n_test])
    return [s for i, s in enumerate(lines) if i not in held], [lines[i] for i in sorted(held)]


@dataclass
class _Lines:
    train: list[str]
    test: list[str]
    skipped_blank: int = 0
    source: str = ""
    held_out: bool = False
    notes: list[str] = field(default_factory=list)


def _hf_load(cfg: DataConfig) -> Any:
    """The ``datasets`` object named by ``cfg.hf_dataset`` (a DatasetDict or a Dataset)."""
    datasets = require_extra("datasets", "hf", "data.hf_dataset")

    name = cfg.hf_dataset
    folder = Path(name).expanduser()
    try:
        if folder.is_dir() and any((folder / f).is_file() for f in ("dataset_dict.json", "state.json")):
            return datasets.load_from_disk(str(folder))
        return datasets.load_dataset(name, cfg.hf_config or None)
    except Exception as exc:  # datasets raises many types (ConnectionError, ValueError, ...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load Hugging Face dataset {name!r}: {type(exc).__name__}: {detail}") from None


def _hf_column(split: Any, cfg: DataConfig, split_name: str) -> list[str]:
    """The text column of one split as strings (None -> blank)."""
    columns = list(split.column_names)
    if cfg.text_field not in columns:
        raise UserError(f"Hugging Face dataset {cfg.hf_dataset!r} split {split_name!r} has no column "
                        f"{cfg.text_field!r} (columns: {', '.join(columns)}); set data.text_field")
    dtype = getattr(split.features[cfg.text_field], "dtype", None)
    if dtype not in ("string", "large_string"):
        raise UserError(f"Hugging Face dataset {cfg.hf_dataset!r}: column {cfg.text_field!r} holds "
                        f"{split.features[cfg.text_field]}, not text; set data.text_field to a string column")
    return [value or "" for value in split[cfg.text_field]]


def _load_hf(cfg: DataConfig, seed: int) -> _Lines:
    ds = _hf_load(cfg)
    splits = dict(ds) if hasattr(ds, "keys") else {cfg.hf_train_split: ds}  # a lone Dataset is the train split
    name = cfg.hf_dataset
    if cfg.hf_train_split not in splits:
        raise UserError(f"Hugging Face dataset {name!r} has no split {cfg.hf_train_split!r} "
                        f"(splits: {', '.join(splits)}); set data.hf_train_split")
    source = f"Hugging Face dataset {name!r}"
    train, blank = _nonblank(_hf_column(splits[cfg.hf_train_split], cfg, cfg.hf_train_split),
                             f"{source} split {cfg.hf_train_split!r}")
    if cfg.hf_test_split and cfg.hf_test_split in splits:
        test, blank_test = _nonblank(_hf_column(splits[cfg.hf_test_split], cfg, cfg.hf_test_split),
                                     f"{source} split {cfg.hf_test_split!r}")
        return _Lines(train, test, blank + blank_test, source)
    train, test = _hold_out(train, cfg.test_fraction, seed, source)
    note = (f"no split {cfg.hf_test_split!r} in {name!r} (splits: {', '.join(splits)})" if cfg.hf_test_split
            else "data.hf_test_split is empty")
    return _Lines(train, test, blank, source, held_out=True, notes=[note])


def _load_files(cfg: DataConfig, seed: int) -> _Lines:
    if not cfg.train:
        corpus = f"corpus {cfg.name!r}" if cfg.name else "the corpus"
        raise UserError(f"{corpus} has no training file (data.train is empty; a test-only corpus serves for "
                        f"evaluation only): set data.train to a file with one example per line, or data.hf_dataset")
    train_path = _split_path(cfg, cfg.train)
    if not cfg.dir and not train_path.exists():
        raise UserError(f"training file not found: {train_path} (data.dir is empty, so data.train is a path "
                        f"of its own; set data.dir to the folder holding {cfg.train})")
    if cfg.card and not train_path.exists():
        raise UserError(f"corpus {cfg.name!r} is not prepared: {train_path} is missing (run `seqgan-kit data "
                        f"prepare {cfg.name}`, or set data.dir to your copy of the folder)")
    train, blank = _nonblank(read_lines(train_path), str(train_path))
    if not cfg.test:
        train, test = _hold_out(train, cfg.test_fraction, seed, str(train_path))
        return _Lines(train, test, blank, str(train_path), held_out=True, notes=["data.test is empty"])
    test_path = _split_path(cfg, cfg.test)
    test, blank_test = _nonblank(read_lines(test_path), str(test_path))
    return _Lines(train, test, blank + blank_test, str(train_path))


def _load(cfg: DataConfig, seed: int) -> _Lines:
    lines = _load_hf(cfg, seed) if cfg.hf_dataset else _load_files(cfg, seed)
    if cfg.segment == "sentence":
        lines.train = [s for paragraph in lines.train for s in split_sentences(paragraph)]
        lines.test = [s for paragraph in lines.test for s in split_sentences(paragraph)]
    if cfg.max_train > 0:
        lines.train = lines.train[:cfg.max_train]
    return lines


def load_lines(cfg: DataConfig, seed: int) -> tuple[list[str], list[str]]:
    """The (train, test) examples of ``cfg`` as text: stripped, blank lines skipped, segmented, ``max_train``.

    A test split held out of train (no ``data.test`` / no test split) depends on ``seed`` only; it is taken
    by paragraph, before sentence segmentation, so no paragraph feeds both splits.
    """
    lines = _load(cfg, seed)
    return lines.train, lines.test


# --------------------------------------------------------------------------- encoding
def check_encoded_fits(cfg: DataConfig, examples: int, longest: int) -> None:
    """UserError (before the vocabulary is built or anything encoded) when ``examples`` rows padded to
    ``data.max_tokens`` do not fit in this machine's memory: 17 bytes an id, the int64 rows twice and the bool
    mask that places them (a COCO run at max_tokens 20,000 peaked at 1.7x the rows' bytes)."""
    width = cfg.max_tokens + 1 if cfg.ending == "eos" else cfg.max_tokens
    check_fits({"encoded rows": examples * width * 17}, f"{MAX_TOKENS_KEY} = {cfg.max_tokens:,}",
               f"{examples:,} examples are padded to {width:,} ids each; lower {MAX_TOKENS_KEY} (the longest "
               f"training example has {longest:,} tokens)")


def encode_examples(token_lists: Sequence[Sequence[str]], vocab: Vocab, max_tokens: int,
                    ending: str = "eos") -> tuple[torch.Tensor, int]:
    """Rows and the number of examples truncated to max_tokens: ``ending = "eos"``: ``[N, max_tokens + 1]`` int64 (ids,
    EOS, then PAD); ``"pad"``: ``[N, max_tokens]`` (ids, then PAD; no EOS)."""
    if ending not in ENDINGS:
        raise ValueError(f"ending must be one of {ENDINGS}, got {ending!r}")
    width = max_tokens + 1 if ending == "eos" else max_tokens
    ids = [vocab.encode(tokens[:max_tokens]) for tokens in token_lists]
    lengths = torch.tensor([len(row) for row in ids], dtype=torch.long)
    rows = torch.full((len(ids), width), PAD, dtype=torch.long)
    body = torch.arange(width)[None, :] < lengths[:, None]  # [N, width]
    rows[body] = torch.tensor([i for row in ids for i in row], dtype=torch.long)
    if ending == "eos":
        rows[torch.arange(len(ids)), lengths] = EOS
    truncated = sum(len(tokens) > max_tokens for tokens in token_lists)
    return rows, truncated


def row_lengths(rows: torch.Tensor) -> torch.Tensor:
    """Tokens before the first EOS or PAD of each row: ``[N, T]`` -> ``[N]`` (T when a row has neither).

    In ``eos`` rows PAD only follows EOS, so this is the position of the EOS; in ``pad`` rows it is the position
    of the first PAD (a generated row may hold later non-PAD tokens: decoding keeps them, this count does not).
    """
    is_end = (rows == EOS) | (rows == PAD)
    first = is_end.int().argmax(dim=1)
    return torch.where(is_end.any(dim=1), first, torch.full_like(first, rows.shape[1]))


def unk_rate(rows: torch.Tensor) -> float:
    """Share of UNK among the tokens before EOS (or PAD) in ``rows`` ``[N, T]`` (0.0 when there are none)."""
    body = torch.arange(rows.shape[1])[None, :] < row_lengths(rows)[:, None]
    n = int(body.sum())
    return float(((rows == UNK) & body).sum()) / n if n else 0.0


def decode_rows(rows: torch.Tensor, vocab: Vocab, tokenizer: Tokenizer) -> list[str]:
    """Token-id rows ``[N, T]`` -> detokenized text (each row read up to its first EOS; PAD dropped wherever it
    stands, so a ``pad`` row keeps the tokens a generator wrote after a PAD)."""
    return [tokenizer.detokenize(vocab.decode(row)) for row in rows.tolist()]


def _percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


# --------------------------------------------------------------------------- the text task's data
@dataclass
class TextData:
    """Everything the text task trains and evaluates on.

    ``train``: ``[N, T]`` int64 rows, ``test``: ``[M, T]`` (``T = max_tokens + 1`` for ``data.ending = "eos"``,
    ``max_tokens`` for ``"pad"``; see the encoding convention);
    ``test_lines``: the M test examples as text (full length, lowercased when ``data.lowercase``), the BLEU
    references; ``stats``: counts and rates reported when the data was prepared.
    """

    tokenizer: Tokenizer
    vocab: Vocab
    train: torch.Tensor
    test: torch.Tensor
    test_lines: list[str]
    stats: dict[str, Any]

    def decode(self, rows: torch.Tensor) -> list[str]:
        """Token-id rows ``[N, T]`` -> text."""
        return decode_rows(rows, self.vocab, self.tokenizer)


def _train_sha256(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _vocab_meta(cfg: DataConfig, spm_sha256: str, train_sha256: str) -> dict[str, Any]:
    """What ``vocab.json`` records about how it was built (checked again on resume)."""
    return {"corpus": cfg.name, "tokenizer": cfg.tokenizer, "lowercase": cfg.lowercase, "min_freq": cfg.min_freq,
            "max_vocab": cfg.max_vocab, "spm_sha256": spm_sha256, "train_sha256": train_sha256}


_META_KEYS = {"corpus": "data.name", "tokenizer": "data.tokenizer", "lowercase": "data.lowercase",
              "min_freq": "data.min_freq", "max_vocab": "data.max_vocab"}


def _check_meta(saved: dict[str, Any], wanted: dict[str, Any], vocab_path: Path, spm_path: Path | None) -> None:
    """UserError naming the first setting in which a saved vocabulary differs from the config."""
    for key, option in _META_KEYS.items():
        if key in wanted and saved.get(key) != wanted[key]:
            raise UserError(f"{vocab_path} was built with {option}={saved.get(key)!r} but the config has "
                            f"{wanted[key]!r}; resume with the run's own settings or use a new run directory")
    if "spm_sha256" in wanted and saved.get("spm_sha256") != wanted["spm_sha256"]:
        raise UserError(f"{vocab_path} was built with another sentencepiece model than {spm_path} (sha256 "
                        f"{str(saved.get('spm_sha256'))[:12]}..., now {wanted['spm_sha256'][:12]}...)")
    if "train_sha256" in wanted and saved.get("train_sha256") != wanted["train_sha256"]:
        raise UserError(f"{vocab_path} was built from other training examples than the config gives now (the "
                        f"corpus files or data.segment/max_train/test changed); use a new run directory")


def _tokenize(tokenizer: Tokenizer, lines: list[str]) -> tuple[list[str], list[list[str]], int]:
    """(kept lines, their tokens, number dropped because they have no token)."""
    tokens = [tokenizer.tokenize(line) for line in lines]
    keep = [i for i, t in enumerate(tokens) if t]
    return [lines[i] for i in keep], [tokens[i] for i in keep], len(lines) - len(keep)


def _tokenizer_for_build(cfg: DataConfig, workdir: Path, train: list[str], resuming: bool,
                         log: Callable[[str], None]) -> Tokenizer:
    """The tokenizer; trains WORKDIR/spm.model first when sentencepiece has no model yet (fresh runs only)."""
    if cfg.tokenizer == "sentencepiece" and not cfg.spm_model:
        path = spm_model_path(cfg, workdir)
        if resuming and not path.is_file():
            raise UserError(f"{workdir / VOCAB_FILE} exists but its sentencepiece model {path} is missing; "
                            f"use a new run directory")
        if not resuming:
            log(f"data: training a {cfg.spm_model_type} sentencepiece model ({cfg.spm_vocab_size:,} pieces) on "
                f"{len(train):,} training examples -> {path}")
            train_sentencepiece(train, path, cfg.spm_vocab_size, cfg.spm_model_type, cfg.lowercase)
    return make_tokenizer(cfg, workdir)


def prepare_text_data(cfg: DataConfig, workdir: str | Path, seed: int,
                      log: Callable[[str], None] = print) -> TextData:
    """Load, tokenize and encode the corpus of ``cfg``; build or reuse WORKDIR/vocab.json (+ spm.model).

    A fresh ``workdir`` gets a vocabulary of the training split (``min_freq``, ``max_vocab``) saved with the
    corpus name, tokenizer, lowercase flag, the sentencepiece model's sha256 and a hash of the training
    examples. When ``workdir/vocab.json`` exists (a resumed run) it and the sentencepiece model are reused,
    after checking that they match ``cfg`` (UserError if not). A short report goes to ``log``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    lines = _load(cfg, seed)
    vocab_path = workdir / VOCAB_FILE
    resuming = vocab_path.is_file()
    tokenizer = _tokenizer_for_build(cfg, workdir, lines.train, resuming, log)
    train_lines, train_tokens, empty_train = _tokenize(tokenizer, lines.train)
    test_lines, test_tokens, empty_test = _tokenize(tokenizer, lines.test)
    spm_sha = tokenizer.sha256 if isinstance(tokenizer, SentencePieceTokenizer) else ""
    meta = _vocab_meta(cfg, spm_sha, _train_sha256(train_lines))
    if not train_tokens:
        raise UserError(f"{lines.source}: no training example has a token")
    check_encoded_fits(cfg, len(train_tokens) + len(test_tokens), max(map(len, train_tokens)))
    if resuming:
        vocab = Vocab.load(vocab_path)
        _check_meta(vocab.meta, meta, vocab_path, getattr(tokenizer, "model_path", None))
        log(f"data: reusing the vocabulary {vocab_path} ({len(vocab):,} tokens, fingerprint {vocab.fingerprint})")
    else:
        vocab = Vocab.build(train_tokens, cfg.min_freq, cfg.max_vocab)
        vocab.meta = meta
        vocab.save(vocab_path)
    train, truncated_train = encode_examples(train_tokens, vocab, cfg.max_tokens, cfg.ending)
    test, truncated_test = encode_examples(test_tokens, vocab, cfg.max_tokens, cfg.ending)
    if cfg.lowercase:
        test_lines = [line.lower() for line in test_lines]
    stats = _stats(cfg, lines, vocab, train, test, train_tokens, test_tokens, truncated_train, truncated_test,
                   empty_train + empty_test)
    _report(cfg, stats, lines, log)
    return TextData(tokenizer, vocab, train, test, test_lines, stats)


def _stats(cfg: DataConfig, lines: _Lines, vocab: Vocab, train: torch.Tensor, test: torch.Tensor,
           train_tokens: list[list[str]], test_tokens: list[list[str]], truncated_train: int,
           truncated_test: int, empty: int) -> dict[str, Any]:
    train_lengths = [len(t) for t in train_tokens]
    test_lengths = [len(t) for t in test_tokens]
    return {
        "corpus": cfg.name, "source": lines.source, "tokenizer": cfg.tokenizer, "max_tokens": cfg.max_tokens,
        "n_train": len(train_tokens), "n_test": len(test_tokens), "held_out_test": lines.held_out,
        "truncated_train": truncated_train, "truncated_test": truncated_test,
        "skipped_blank": lines.skipped_blank, "skipped_no_tokens": empty,
        "vocab_size": len(vocab), "vocab_fingerprint": vocab.fingerprint,
        "unk_rate_train": unk_rate(train), "unk_rate_test": unk_rate(test),
        "mean_len_train": sum(train_lengths) / len(train_lengths),
        "mean_len_test": sum(test_lengths) / len(test_lengths) if test_lengths else 0.0,
        "mean_len_test_rows": float(row_lengths(test).double().mean()) if len(test) else 0.0,
        "p50_len_train": _percentile(train_lengths, 0.50), "p95_len_train": _percentile(train_lengths, 0.95),
        "p99_len_train": _percentile(train_lengths, 0.99), "max_len_train": max(train_lengths),
    }


def _report(cfg: DataConfig, s: dict[str, Any], lines: _Lines, log: Callable[[str], None]) -> None:
    name = cfg.name or lines.source
    held = f" (test held out: {'; '.join(lines.notes)})" if lines.held_out else ""
    log(f"data: {name}: {s['n_train']:,} training and {s['n_test']:,} test examples, {cfg.tokenizer} tokens"
        f"{held}; skipped {s['skipped_blank']:,} blank lines")
    log(f"data: truncated {s['truncated_train']:,} of {s['n_train']:,} training examples and "
        f"{s['truncated_test']:,} of {s['n_test']:,} test examples to {cfg.max_tokens} tokens (training lengths: "
        f"mean {s['mean_len_train']:.1f}, median {s['p50_len_train']}, p95 {s['p95_len_train']}, "
        f"max {s['max_len_train']}; test split mean {s['mean_len_test']:.1f}, after truncation "
        f"{s['mean_len_test_rows']:.1f}: compare the samples' mean_len with it)")
    log(f"data: vocabulary of {s['vocab_size']:,} tokens (with 4 specials), test UNK rate "
        f"{100 * s['unk_rate_test']:.2f}%")
    warning = truncation_warning(cfg, s, name)
    if warning:
        print(f"seqgan-kit: warning: {warning}", file=sys.stderr, flush=True)


def truncation_warning(cfg: DataConfig, s: dict[str, Any], name: str) -> str:
    """The warning when more than :data:`TRUNCATION_WARNING` of the examples are cut to ``max_tokens`` ('' if not).

    ``s`` is the corpus statistics of :func:`prepare_text_data` (truncated and total counts, length percentiles).
    """
    cut, total = s["truncated_train"] + s["truncated_test"], s["n_train"] + s["n_test"]
    if total == 0 or cut / total <= TRUNCATION_WARNING:
        return ""
    return (f"{name}: {cut:,} of {total:,} examples ({cut / total:.1%}: {s['truncated_train']:,} of "
            f"{s['n_train']:,} training, {s['truncated_test']:,} of {s['n_test']:,} test) are longer than "
            f"{MAX_TOKENS_KEY} = {cfg.max_tokens} tokens and lose their end (training lengths: "
            f"p95 {s['p95_len_train']}, p99 {s['p99_len_train']}, max {s['max_len_train']}); to keep them: --set "
            f"{MAX_TOKENS_KEY}={s['p99_len_train']} or more")


def load_text_pipeline(cfg: DataConfig, workdir: str | Path) -> tuple[Tokenizer, Vocab]:
    """The tokenizer and vocabulary of a finished (or running) text run in ``workdir``, for sampling/evaluation.

    Reads ``workdir/vocab.json`` and, for sentencepiece, the model (``data.spm_model`` or
    ``workdir/spm.model``); checks that they belong to ``cfg`` (corpus, tokenizer, lowercase, model hash).
    """
    workdir = Path(workdir)
    vocab_path = workdir / VOCAB_FILE
    if not vocab_path.is_file():
        raise UserError(f"no vocabulary in {workdir} ({VOCAB_FILE} is missing): is it the directory of a text run?")
    vocab = Vocab.load(vocab_path)
    tokenizer = make_tokenizer(cfg, workdir)
    wanted: dict[str, Any] = {"corpus": cfg.name, "tokenizer": cfg.tokenizer, "lowercase": cfg.lowercase}
    if isinstance(tokenizer, SentencePieceTokenizer):
        wanted["spm_sha256"] = tokenizer.sha256
    _check_meta(vocab.meta, wanted, vocab_path, getattr(tokenizer, "model_path", None))
    return tokenizer, vocab
