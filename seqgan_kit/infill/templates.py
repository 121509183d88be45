"""Templates: a text with blanks, parsed and turned into the rows an in-filler fills.

A blank is ``___`` (another marker can be chosen) or ``___{k}`` for exactly ``k`` tokens (``k`` >= 1).

- Text runs: the segments between blanks are tokenized with the run's tokenizer (a token outside the
  vocabulary is read as ``<unk>`` and reported). A plain ``___`` is one or more tokens: every way of sizing the
  plain blanks that fits the model's length gives one row (at most :data:`MAX_SIZINGS`, counted before any is
  enumerated).
- Synthetic runs: the text is token ids and blanks, exactly ``seq_len`` tokens counting each blank's size (a
  plain ``___`` is one token).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import torch

from ..data.tokenization import UNK, Tokenizer, Vocab
from ..errors import UserError

BLANK = "___"
MAX_SIZINGS = 512
"""At most this many ways to size a template's plain blanks (beyond: give sizes with ``___{k}``)."""


@dataclass
class Template:
    """A parsed template: text segments and blanks in order. A blank is its size, or None (plain, text runs:
    one or more tokens)."""

    pieces: list[str | int | None]

    @property
    def blanks(self) -> list[int | None]:
        return [p for p in self.pieces if not isinstance(p, str)]


def parse_template(text: str, blank: str = BLANK) -> Template:
    """``"a ___ b ___{2}"`` -> ``Template(["a ", None, " b ", 2, ""])``; UserError without a blank or with a
    size that is not a whole number >= 1 (``___{-1}``, ``___{x}``)."""
    if not blank:
        raise UserError("the blank marker must not be empty")
    pattern = re.compile(re.escape(blank) + r"(?:\{([^}]*)\})?")
    pieces: list[str | int | None] = []
    start = 0
    for match in pattern.finditer(text):
        pieces.append(text[start:match.start()])
        if match.group(1) is None:
            pieces.append(None)
        else:
            size = match.group(1).strip()
            if not size.isdigit() or int(size) < 1:
                raise UserError(f"a blank {match.group(0)!r} must have at least 1 token: its size is a whole "
                                f"number >= 1, e.g. {blank}{{2}}")
            pieces.append(int(size))
        start = match.end()
    pieces.append(text[start:])
    template = Template(pieces)
    if not template.blanks:
        raise UserError(f"no blank {blank!r} in the text to fill")
    return template


def count_sizings(plain: int, spare: int) -> int:
    """Ways to give ``plain`` blanks sizes >= 1 with sum <= ``spare``: ``C(spare, plain)`` (0 if none fits)."""
    return math.comb(spare, plain) if 0 <= plain <= spare else 0


def sizings(template: Template, room: int) -> list[tuple[int, ...]]:
    """Every way to size the template's blanks (one size per blank, plain ones >= 1) within ``room`` tokens, in
    lexicographic order of the plain blanks' sizes. UserError, before any is enumerated, when there are more
    than :data:`MAX_SIZINGS`."""
    fixed = sum(b for b in template.blanks if b is not None)
    plain = sum(1 for b in template.blanks if b is None)
    spare = room - fixed
    count = count_sizings(plain, spare)
    if count == 0:
        return []
    if count > MAX_SIZINGS:
        raise UserError(f"{count:,} ways to size the {plain} plain blanks (more than {MAX_SIZINGS}): give "
                        f"some of them a size, e.g. ___{{2}}")
    # A sizing with sum <= spare is a choice of `plain` cut points 1 <= c_1 < ... < c_plain <= spare: the sizes
    # are the gaps between them.
    choices = sorted(tuple(b - a for a, b in zip((0, *cuts), cuts, strict=False))
                     for cuts in itertools.combinations(range(1, spare + 1), plain))
    out = []
    for choice in choices:
        it = iter(choice)
        out.append(tuple(b if b is not None else next(it) for b in template.blanks))
    return out


def vocab_encode(tokenizer: Tokenizer, vocab: Vocab, text: str) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` and the tokens that are not in the vocabulary (read as ``<unk>``)."""
    tokens = tokenizer.tokenize(text.strip()) if text.strip() else []
    ids = vocab.encode(tokens)
    return ids, [t for t, i in zip(tokens, ids, strict=True) if i == UNK and t != "<unk>"]


def text_rows(template: Template, tokenizer: Tokenizer, vocab: Vocab, seq_len: int, eos: int, pad: int
              ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``(ids [S, seq_len], present [S, seq_len], unknown tokens)``: one row per sizing of the blanks, the text's
    tokens present, masked slots, then EOS and PAD. UserError when no sizing fits ``seq_len - 1`` tokens."""
    segments = [vocab_encode(tokenizer, vocab, p) if isinstance(p, str) else None for p in template.pieces]
    text_tokens = sum(len(s[0]) for s in segments if s is not None)
    unknown = [t for s in segments if s is not None for t in s[1]]
    options = sizings(template, seq_len - 1 - text_tokens)
    if not options:
        least = text_tokens + sum(b if b is not None else 1 for b in template.blanks)
        raise UserError(f"the text is at least {least} tokens with its blanks, longer than the model's "
                        f"{seq_len - 1}")
    rows, masks = [], []
    for sizes in options:
        ids: list[int] = []
        present: list[bool] = []
        it = iter(sizes)
        for seg in segments:
            if seg is None:
                k = next(it)
                ids += [pad] * k  # placeholders, never read: the slots are masked
                present += [False] * k
            else:
                ids += seg[0]
                present += [True] * len(seg[0])
        length = len(ids)
        ids += [eos] + [pad] * (seq_len - length - 1)
        present += [True] * (seq_len - length)
        rows.append(ids)
        masks.append(present)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks), unknown


def id_row(template: Template, vocab_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids [1, seq_len], present [1, seq_len])`` for a synthetic run: ids and blanks, ``seq_len`` in all."""
    total = sum(len(p.split()) if isinstance(p, str) else (p or 1) for p in template.pieces)
    if total != seq_len:  # checked before any list of that size is made
        raise UserError(f"a synthetic run fills sequences of exactly {seq_len} tokens; got {total} (ids and "
                        f"blank sizes)")
    ids: list[int] = []
    present: list[bool] = []
    for piece in template.pieces:
        if not isinstance(piece, str):
            ids += [0] * (piece or 1)
            present += [False] * (piece or 1)
            continue
        for item in piece.split():
            try:
                token = int(item)
            except ValueError:
                raise UserError(f"a synthetic run's text is token ids and blanks; got {item!r}") from None
            if not 0 <= token < vocab_size:
                raise UserError(f"token id {token} outside the vocabulary of size {vocab_size}")
            ids.append(token)
            present.append(True)
    return torch.tensor([ids], dtype=torch.long), torch.tensor([present])
