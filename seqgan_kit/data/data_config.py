"""The ``[data]`` table (:class:`DataConfig`) and the corpus cards that fill it: where a text corpus lives and how
it becomes tokens.

A corpus card (``corpora/<name>.toml``, shipped with the package, or any TOML file) holds :class:`DataConfig` keys
for one corpus, plus informational keys for people (:data:`CARD_NOTES`) and a ``[prepare]`` table that
``seqgan-kit data prepare`` reads (pinned sources, cleaning, expected hashes). A recipe names a card with
``data.card = "poetry_quatrain5"`` (a packaged card) or a path; the recipe's ``[data]`` keys override the card.

Where the files are: a card-based corpus with an empty ``data.dir`` is read from the data root
(:func:`data_root`: ``$SEQGAN_KIT_DATA``, else ``./data``), folder ``<root>/<name>/``, which is exactly where
``seqgan-kit data prepare NAME`` writes it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import ConfigError, Override, coerce, one_of, plain, positive
from ..errors import UserError, require_extra
from ..packaged import close_names, packaged_dir

CARDS_DIR = packaged_dir("corpora")
"""The cards shipped with the package (the top-level ``corpora/`` folder)."""
DATA_ENV = "SEQGAN_KIT_DATA"
"""Environment variable naming the data root (default ``./data``)."""
CARD_NOTES = ("description", "source", "license", "split", "notes", "size", "prepare")
"""Card keys for people (and ``[prepare]`` for ``data prepare``), accepted and ignored by the loader."""
TOKENIZER_KINDS = ("char", "whitespace", "sentencepiece")
NEIGHBOURS = ("", "sentences", "clauses")
ENDINGS = ("eos", "pad")


@dataclass
class DataConfig:
    """A real-text corpus (``task = "text"``): where the lines come from and how they become token ids.

    A corpus card (``corpora/<name>.toml``, or any card file) fills these fields; keys set in the
    recipe's ``[data]`` table and ``--set data.KEY=...`` override the card. Any UTF-8 file with one example per
    line works without a card.
    """

    card: str = ""
    """Corpus card (TOML) whose keys fill this table; a relative path is resolved against the recipe's folder."""
    name: str = ""
    """Corpus name (recorded with the vocabulary; sampling refuses a checkpoint of another corpus)."""
    language: str = ""
    """Informational: e.g. ``zh-Hans``, ``zh-Hant``, ``en``."""
    dir: str = ""
    """Folder holding the split files. Empty: ``train``/``test`` are paths on their own."""
    train: str = "train.txt"
    test: str = "test.txt"
    """Held-out examples: NLL_test and the BLEU references. Empty: hold out ``test_fraction`` of train."""
    test_fraction: float = 0.1
    """Share of the training lines held out (seeded) when ``test`` is empty."""
    hf_dataset: str = ""
    """A Hugging Face ``datasets`` id or local dataset folder; replaces ``dir``/``train``/``test``."""
    hf_config: str = ""
    hf_train_split: str = "train"
    hf_test_split: str = "test"
    text_field: str = "text"
    """Column holding the text in a ``datasets`` dataset."""
    segment: str = "line"
    """``line``: one example per line. ``sentence``: split each line into sentences (speeches)."""
    lowercase: bool = False
    tokenizer: str = "char"
    """``char`` (Chinese: every non-space character, punctuation included), ``whitespace`` (pre-tokenized
    text) or ``sentencepiece`` (raw text; a model is trained on the training split, kept in the run dir)."""
    spm_vocab_size: int = 4000
    spm_model_type: str = "unigram"
    spm_model: str = ""
    """An existing sentencepiece ``.model`` to use instead of training one."""
    max_tokens: int = 24
    """Tokens per example before EOS (or PAD). Longer examples are truncated (counted and reported)."""
    ending: str = "eos"
    """How a sentence ends. ``eos``: an EOS token, then PAD after it that no model sees (rows of max_tokens + 1;
    generators never emit PAD; discriminators mask it). ``pad``: RelGAN's fixed-length text: no EOS, every
    sentence padded to max_tokens with PAD, an ordinary token the generator emits; discriminators see every
    position; MLE and NLL count PAD positions (``nll_test`` stops at the first PAD, see ``tasks/text.py``);
    decoding drops PAD wherever it stands. Algorithms ``mle``, ``seqgan`` and ``gumbel`` take either."""
    min_freq: int = 1
    """Tokens seen fewer times in the training split map to UNK."""
    max_vocab: int = 0
    """Keep at most this many tokens (most frequent first), besides PAD/BOS/EOS/UNK. 0: no limit."""
    max_train: int = 0
    """Use at most this many training examples (0: all)."""
    eval_tokenizer: str = ""
    """How BLEU splits detokenized text: ``char``, ``whitespace`` or ``treebank``. Empty: the model's tokens."""
    bleu_orders: list[int] = field(default_factory=lambda: [2])
    neighbours: str = ""
    """What a Skip-Thought run takes as consecutive sentences: ``""`` (none: the corpus cannot train one),
    ``sentences`` (consecutive sentences of a line/paragraph) or ``clauses`` (consecutive clauses of a line, split
    after ``，`` and ``。``: the four lines of a quatrain)."""

    def validate(self) -> None:
        one_of(self, "tokenizer", TOKENIZER_KINDS)
        one_of(self, "segment", ("line", "sentence"))
        one_of(self, "neighbours", NEIGHBOURS)
        one_of(self, "spm_model_type", ("unigram", "bpe", "char", "word"))
        one_of(self, "eval_tokenizer", ("", "char", "whitespace", "treebank"))
        one_of(self, "ending", ENDINGS)
        positive(self, "max_tokens", "min_freq", "spm_vocab_size")
        for key in ("max_vocab", "max_train"):
            if getattr(self, key) < 0:
                raise ConfigError(key, f"must be >= 0 (0 = no limit), got {getattr(self, key)}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError("test_fraction", f"must lie in (0, 1), got {self.test_fraction}")
        if self.hf_dataset:
            require_extra("datasets", "hf", "data.hf_dataset")  # a missing extra stops before any work
        if not self.bleu_orders or not all(1 <= n <= 5 for n in self.bleu_orders):
            raise ConfigError("bleu_orders", f"expected orders in 1..5, got {self.bleu_orders}")


def data_root() -> Path:
    """The folder prepared corpora live in: ``$SEQGAN_KIT_DATA``, else ``./data``."""
    return Path(os.environ.get(DATA_ENV) or "data").expanduser()


def find_card(spec: str, relative_to: Path | None = None) -> Path:
    """The card file for ``spec``: a packaged card's name (``poetry_quatrain5``), or a path to a TOML file
    (relative paths are tried against ``relative_to`` first, then the working directory)."""
    if spec and "/" not in spec and "\\" not in spec and not spec.endswith(".toml"):
        path = CARDS_DIR / f"{spec}.toml"
        if path.is_file():
            return path
        names = sorted(p.stem for p in CARDS_DIR.glob("*.toml"))
        close = close_names(spec, names)
        known = f"close names: {', '.join(close)}" if close else f"packaged cards: {', '.join(names)}"
        raise UserError(f"unknown corpus card {spec!r} ({known}; or give a path to a .toml file)")
    path = Path(spec).expanduser()
    if not path.is_absolute() and relative_to is not None and (relative_to / path).is_file():
        path = relative_to / path
    if not path.is_file():
        raise UserError(f"corpus card not found: {path}")
    return path


RENAMED_KEYS = {"max_len": "max_tokens"}
"""``[data]`` keys with a new name: old -> new (a recipe, ``--set`` or card that uses the old one is refused)."""


def read_card(path: str | Path) -> dict[str, Any]:
    """The whole card as a dict (informational keys and ``[prepare]`` included); UserError if unreadable."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read corpus card {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"corpus card {path} is not valid UTF-8 TOML: {exc}") from None


def load_card(path: str | Path) -> dict[str, Any]:
    """A card's :class:`DataConfig` keys (unknown keys raise UserError naming the card)."""
    card = read_card(path)
    card.pop("card", None)
    known = {f.name for f in fields(DataConfig)}
    unknown = sorted(k for k in card if k not in known and k not in CARD_NOTES)
    renamed = [k for k in unknown if k in RENAMED_KEYS]
    if renamed:
        raise UserError(f"corpus card {path}: key '{renamed[0]}' is renamed: write {RENAMED_KEYS[renamed[0]]} instead")
    if unknown:
        raise UserError(f"corpus card {path}: unknown key '{unknown[0]}' (known keys: {', '.join(sorted(known))})")
    return {k: v for k, v in card.items() if k in known}


def with_card(table: dict[str, Any], relative_to: Path | None) -> dict[str, Any]:
    """The ``[data]`` table with the card it names merged underneath (the table's own keys win).

    A card-based corpus whose ``dir`` stays empty is read from ``data_root() / name``
    (where ``data prepare`` puts it); the resolved folder is recorded in ``dir``.
    """
    spec = table.get("card", "")
    if isinstance(spec, Override):
        spec = coerce("card", spec, str)
    if not isinstance(spec, str):
        raise ConfigError("card", f"expected a card name or path (a string), got {spec!r}")
    if not spec:
        return table
    path = find_card(spec, relative_to)
    merged = {**load_card(path), **table, "card": str(path)}
    name, folder = plain(merged.get("name", "")), plain(merged.get("dir", ""))
    if not folder and isinstance(name, str) and name:
        merged["dir"] = str((data_root() / name).resolve())
    return merged
