"""Reading sentence files for the BLEU commands: strict UTF-8, one sentence per line, split by a word tokenizer.

Tokenizers (:data:`seqgan_kit.data.tokenization.WORD_TOKENIZERS`): ``whitespace`` (default, text that is
already tokenized: the COCO/EMNLP files), ``char`` (every non-space character, for Chinese) and ``treebank``
(the Penn Treebank rules Texygen uses). Lines are read by :func:`seqgan_kit.files.read_lines`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..data.tokenization import word_tokenizer
from ..errors import UserError
from ..files import read_lines


def read_sentences(path: str | Path, mode: str | Callable[[str], list[str]] = "whitespace",
                   max_lines: int | None = None, allow_empty: bool = False) -> list[list[str]]:
    """Tokenized sentences, one per line of ``path`` (at most the first ``max_lines``); ``mode`` is a word
    tokenizer's name or a function (text -> tokens), e.g. a run's BLEU tokenizer.

    A line with no tokens raises UserError naming its line number, unless ``allow_empty`` (then it is an
    empty sentence, which scores BLEU 0 as a hypothesis).
    """
    split = word_tokenizer(mode).tokenize if isinstance(mode, str) else mode
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


def one_token_share(sentences: list[list[str]]) -> float:
    """The share of non-empty sentences that are a single token (whitespace splitting of unspaced text)."""
    nonempty = [s for s in sentences if s]
    return sum(len(s) == 1 and len(s[0]) > 1 for s in nonempty) / max(len(nonempty), 1)
