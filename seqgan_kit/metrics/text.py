"""Reading sentence files for the BLEU commands: strict UTF-8, one sentence per line, three tokenizers.

- ``whitespace`` (default): ``line.split()``, for text that is already tokenized (the COCO/EMNLP files).
- ``char``: every non-space character is a token (Chinese poems and other unsegmented text).
- ``treebank``: ``nltk.word_tokenize(line, preserve_line=True)`` (the Penn Treebank rules Texygen uses;
  needs no downloaded nltk data). nltk is imported only when this mode is used.

Lines are split on ``\\n``, ``\\r\\n`` and ``\\r`` (as Python's text files do); a final newline does not make
an extra line, and a leading byte-order mark is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import UserError

TOKENIZERS = ("whitespace", "char", "treebank")


def _char_tokens(line: str) -> list[str]:
    return list("".join(line.split()))


def _treebank() -> Callable[[str], list[str]]:
    from nltk.tokenize import word_tokenize

    return lambda line: word_tokenize(line, preserve_line=True)


def tokenizer(mode: str) -> Callable[[str], list[str]]:
    """The tokenizer function for ``mode`` (one of :data:`TOKENIZERS`)."""
    if mode == "whitespace":
        return str.split
    if mode == "char":
        return _char_tokens
    if mode == "treebank":
        return _treebank()
    raise UserError(f"unknown tokenizer {mode!r} (choose from {', '.join(TOKENIZERS)})")


def read_lines(path: str | Path, max_lines: int | None = None) -> list[str]:
    """The lines of a UTF-8 text file (at most the first ``max_lines``), without line terminators.

    Raises UserError for a missing file, bytes that are not UTF-8 (naming the byte offset and line) and an
    empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{path} is not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                        f"line {line})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise UserError(f"{path} is empty (expected one sentence per line)")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    if max_lines is not None:
        lines = lines[:max_lines]
    return lines


def read_sentences(path: str | Path, mode: str = "whitespace", max_lines: int | None = None,
                   allow_empty: bool = False) -> list[list[str]]:
    """Tokenized sentences, one per line of ``path`` (at most the first ``max_lines``).

    A line with no tokens raises UserError naming its line number, unless ``allow_empty`` (then it is an
    empty sentence, which scores BLEU 0 as a hypothesis).
    """
    split = tokenizer(mode)
    lines = read_lines(path, max_lines)
    # Tokenize each distinct line once (generated samples repeat a lot; treebank rules are slow), then hand
    # out a fresh list per line so that callers may modify sentences independently.
    tokens_of = {line: split(line) for line in dict.fromkeys(lines)}
    sentences = list(map(list, map(tokens_of.__getitem__, lines)))
    if not allow_empty and not all(sentences):
        lineno = sentences.index([]) + 1
        raise UserError(f"{path}:{lineno}: empty line (expected one sentence per line; "
                        "use --allow-empty to score empty lines as empty sentences)")
    return sentences
