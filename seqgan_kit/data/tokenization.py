"""Tokenizers and the token vocabulary of the real-text task.

A text example goes ``str -> tokenize -> list[str] -> Vocab.encode -> list[int]`` and back with
``Vocab.decode`` and ``detokenize``. Token ids 0-3 are reserved::

    PAD = 0  "<pad>"   fills a row after its EOS
    BOS = 1  "<bos>"   never stored in data rows (the generator's start input)
    EOS = 2  "<eos>"   ends every example
    UNK = 3  "<unk>"   a token the training split did not have (or had fewer than ``min_freq`` times)

Tokenizers (``kind``):

- ``char``: every non-whitespace character is a token, punctuation included (Chinese poems);
  ``detokenize`` joins the characters with no spaces.
- ``whitespace``: ``str.split`` (text that is already tokenized); ``detokenize`` joins with single spaces.
- ``sentencepiece``: subword pieces of a sentencepiece model (raw text, e.g. speeches). The model is trained on
  the training split by :func:`train_sentencepiece` (identity normalization, so decoding gives back the text).

``lowercase`` lowercases the text before tokenizing (for sentencepiece, also before training).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import UserError
from ..files import atomic_write, file_sha256

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
VOCAB_FORMAT = "seqgan-kit-vocab"
VOCAB_VERSION = 1
SPM_MODEL = "spm.model"
"""File name of the sentencepiece model trained into a run directory."""


# --------------------------------------------------------------------------- vocabulary
class Vocab:
    """Token strings indexed by id; ids 0-3 are :data:`SPECIALS`.

    ``meta`` is free-form information saved with the vocabulary (corpus name, tokenizer, ...).
    """

    def __init__(self, tokens: Sequence[str], meta: dict[str, Any] | None = None) -> None:
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate tokens in the vocabulary")
        self.tokens = tokens
        self.meta = dict(meta or {})
        # "<pad>", "<bos>" and "<eos>" met in the text are ordinary unknown tokens: only the encoder places
        # EOS/PAD, so a row's layout never depends on the text. "<unk>" in the text means UNK.
        self._index = {tok: i for i, tok in enumerate(tokens) if i > UNK}
        self._index[SPECIALS[UNK]] = UNK

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int = 0) -> Vocab:
        """The vocabulary of the (training) token lists.

        Tokens seen fewer than ``min_freq`` times are dropped (they encode to UNK); at most ``max_size`` tokens
        are kept besides the specials (0: no limit). Order: frequency descending, then the token string, so the
        ids depend only on the counts.
        """
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted((tok for tok, n in counts.items() if n >= min_freq), key=lambda tok: (-counts[tok], tok))
        if max_size > 0:
            kept = kept[:max_size]
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, fingerprint {self.fingerprint})"

    def id(self, token: str) -> int:
        """The id of one token (UNK when it is not in the vocabulary)."""
        return self._index.get(token, UNK)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token strings -> ids (unknown tokens -> UNK). Adds no EOS."""
        get = self._index.get
        return [get(tok, UNK) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> token strings: stops at the first EOS, skips PAD and BOS; UNK decodes to ``"<unk>"``.

        ``ids`` may be a list or a 1-D tensor.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out: list[str] = []
        n = len(self.tokens)
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            if not 0 <= i < n:
                raise ValueError(f"token id {i} outside the vocabulary [0, {n})")
            out.append(self.tokens[i])
        return out

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 (12 hex digits) of the token list: equal fingerprints mean equal ids."""
        blob = json.dumps(self.tokens, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"format": VOCAB_FORMAT, "version": VOCAB_VERSION, "size": len(self),
                "fingerprint": self.fingerprint, "meta": self.meta, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: Any, source: str = "vocabulary") -> Vocab:
        """Inverse of :meth:`to_dict`; raises UserError naming ``source`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise UserError(f"{source} is not a seqgan-kit vocabulary (no \"format\": \"{VOCAB_FORMAT}\")")
        if data.get("version") != VOCAB_VERSION:
            raise UserError(f"{source}: unsupported vocabulary version {data.get('version')!r} "
                            f"(this seqgan-kit reads version {VOCAB_VERSION})")
        tokens, meta = data.get("tokens"), data.get("meta", {})
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or not isinstance(meta, dict):
            raise UserError(f"{source} is corrupt: \"tokens\" must be a list of strings and \"meta\" a table")
        try:
            vocab = cls(tokens, meta)
        except ValueError as exc:
            raise UserError(f"{source} is corrupt: {exc}") from None
        if data.get("fingerprint") not in (None, vocab.fingerprint):
            raise UserError(f"{source} is corrupt: its tokens do not match its fingerprint {data['fingerprint']}")
        return vocab

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON, atomically."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"
        atomic_write(Path(path), text.encode("utf-8"), make_parents=True)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`; UserError for a missing, corrupt or foreign file."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"vocabulary not found: {path}")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read vocabulary {path}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise UserError(f"vocabulary {path} is corrupt (not UTF-8 JSON: {exc})") from None
        return cls.from_dict(data, source=str(path))


# --------------------------------------------------------------------------- tokenizers
class Tokenizer(Protocol):
    """What the text task needs from a tokenizer."""

    kind: str
    lowercase: bool

    def tokenize(self, text: str) -> list[str]: ...

    def detokenize(self, tokens: Sequence[str]) -> str: ...


class CharTokenizer:
    """Every non-whitespace character is a token (punctuation included); detokenize joins with no spaces."""

    kind = "char"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        return list("".join(text.split()))

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


class WhitespaceTokenizer:
    """``str.split`` tokens (pre-tokenized text); detokenize joins with single spaces."""

    kind = "whitespace"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)


class TreebankTokenizer:
    """Penn Treebank words: ``nltk.word_tokenize(text, preserve_line=True)`` (Texygen's BLEU tokens; needs no
    downloaded nltk data); detokenize joins with single spaces. Used to split text for BLEU."""

    kind = "treebank"

    def __init__(self, lowercase: bool = False) -> None:
        from nltk.tokenize import word_tokenize

        self.lowercase = lowercase
        self._split = word_tokenize

    def tokenize(self, text: str) -> list[str]:
        return self._split(text.lower() if self.lowercase else text, preserve_line=True)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)


WORD_TOKENIZERS = {"whitespace": WhitespaceTokenizer, "char": CharTokenizer, "treebank": TreebankTokenizer}
"""Tokenizers that need no model file: how BLEU splits text (``data.eval_tokenizer``, ``--tokenize``)."""


def word_tokenizer(kind: str) -> Tokenizer:
    """The model-free tokenizer ``kind`` (one of :data:`WORD_TOKENIZERS`)."""
    if kind not in WORD_TOKENIZERS:
        raise UserError(f"unknown tokenizer {kind!r} (choose from {', '.join(WORD_TOKENIZERS)})")
    return WORD_TOKENIZERS[kind]()


def eval_tokenizer(kind: str, model_tokenizer: Tokenizer) -> Callable[[str], list[str]]:
    """How BLEU splits a corpus's text: the word tokenizer ``kind``, or the model's own tokens when empty."""
    return word_tokenizer(kind).tokenize if kind else model_tokenizer.tokenize


def _spm_missing_hint(path: Path) -> str:
    return (f"sentencepiece model not found: {path} (a text run trains it into RUN_DIR/{SPM_MODEL} when it "
            f"starts; or set data.spm_model to an existing .model file)")


class SentencePieceTokenizer:
    """Subword pieces of a sentencepiece model; detokenize is sentencepiece's decoding of the pieces.

    An ``"<unk>"`` piece (an UNK id decoded by :class:`Vocab`) decodes to the model's unknown-surface text
    (``"<unk>"`` for models trained by :func:`train_sentencepiece`).
    """

    kind = "sentencepiece"

    def __init__(self, model_path: str | Path, lowercase: bool = False) -> None:
        import sentencepiece as spm

        self.model_path = Path(model_path)
        self.lowercase = lowercase
        if not self.model_path.is_file():
            raise UserError(_spm_missing_hint(self.model_path))
        try:
            self.sha256 = file_sha256(self.model_path)
            self._sp = spm.SentencePieceProcessor(model_file=str(self.model_path))
        except (OSError, RuntimeError) as exc:
            raise UserError(f"cannot read sentencepiece model {self.model_path}: {str(exc).splitlines()[0]} "
                            f"(delete it to retrain, or set data.spm_model to a valid .model file)") from None

    def tokenize(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        return self._sp.encode(text, out_type=str)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self._sp.decode_pieces(list(tokens))

    def __len__(self) -> int:
        return self._sp.get_piece_size()


def train_sentencepiece(lines: Iterable[str], path: str | Path, vocab_size: int, model_type: str = "unigram",
                        lowercase: bool = False) -> Path:
    """Train a sentencepiece model on ``lines`` (in memory) and write it atomically to ``path``.

    Deterministic (one thread, fixed random seed), quiet, ``hard_vocab_limit=False`` (a small corpus may
    give fewer pieces than ``vocab_size``), every character covered, identity normalization (decoding gives
    the text back, up to repeated spaces), no BOS/EOS pieces (the vocabulary adds its own).
    """
    import sentencepiece as spm

    path = Path(path)
    sentences = [line.lower() if lowercase else line for line in lines]
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise UserError(f"cannot train sentencepiece model {path}: no non-blank training line")
    spm.set_random_generator_seed(1609)
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
            normalization_rule_name="identity", bos_id=-1, eos_id=-1, unk_surface=SPECIALS[UNK],
        )
    except RuntimeError as exc:
        message = str(exc).splitlines()[0]
        if "smaller than required_chars" in message:
            message += "; raise data.spm_vocab_size"
        raise UserError(f"cannot train sentencepiece model {path}: {message}") from None
    atomic_write(path, buffer.getvalue(), make_parents=True)
    return path


def spm_model_path(cfg: Any, workdir: str | Path) -> Path:
    """Where the sentencepiece model of ``cfg`` (a DataConfig) lives: ``data.spm_model`` or WORKDIR/spm.model."""
    return Path(cfg.spm_model) if cfg.spm_model else Path(workdir) / SPM_MODEL


def make_tokenizer(cfg: Any, workdir: str | Path) -> Tokenizer:
    """The tokenizer of ``cfg`` (a :class:`~seqgan_kit.data.data_config.DataConfig`).

    ``sentencepiece`` loads ``cfg.spm_model`` if set, else ``workdir/spm.model``; a missing model raises
    UserError (:func:`seqgan_kit.data.corpus.prepare_text_data` trains it first when building).
    """
    if cfg.tokenizer == "char":
        return CharTokenizer(cfg.lowercase)
    if cfg.tokenizer == "whitespace":
        return WhitespaceTokenizer(cfg.lowercase)
    if cfg.tokenizer == "sentencepiece":
        return SentencePieceTokenizer(spm_model_path(cfg, workdir), cfg.lowercase)
    raise UserError(f"data.tokenizer: expected one of 'char', 'whitespace', 'sentencepiece', got {cfg.tokenizer!r}")
