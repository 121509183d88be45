"""``seqgan-kit fill RUN_DIR "text with ___ blanks"``: fill the blanks with a MaskGAN run's in-filler.

A blank is ``___`` (``--blank`` changes the marker) or ``___{k}`` for exactly ``k`` tokens.

- Text runs: the segments between blanks are tokenized with the run's tokenizer (a token outside the
  vocabulary is read as ``<unk>``, and the command says which). A plain ``___`` is one or more tokens: every
  way of sizing the plain blanks that fits the model's length is filled, and each of the ``-n`` fills keeps the
  sizing whose filled sentence the run's language model (the MLE generator inside the in-filler) finds most
  likely per token.
- Synthetic runs: the text is token ids and blanks, exactly ``max_len`` tokens counting each blank's size
  (a plain ``___`` is one token).

Each blank is sampled left to right given everything present, before and after it (the in-filler's encoder
reads the whole masked sequence); the real tokens are copied. ``--file FILE`` fills every line of a file (one
template a line); all templates are checked before any is filled. Output: one fill a line (text runs
detokenized, ``--ids`` token ids), ``-n`` lines per template, in template order.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    import torch

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
    """``"a ___ b ___{2}"`` -> ``Template(["a ", None, " b ", 2, ""])``; UserError without a blank."""
    pattern = re.compile(re.escape(blank) + r"(?:\{(\d+)\})?")
    pieces: list[str | int | None] = []
    start = 0
    for match in pattern.finditer(text):
        pieces.append(text[start:match.start()])
        if match.group(1) is None:
            pieces.append(None)
        else:
            size = int(match.group(1))
            if size < 1:
                raise UserError(f"a blank {match.group(0)!r} must have at least 1 token")
            pieces.append(size)
        start = match.end()
    pieces.append(text[start:])
    template = Template(pieces)
    if not template.blanks:
        raise UserError(f"no blank {blank!r} in the text to fill")
    return template


def sizings(template: Template, room: int) -> list[tuple[int, ...]]:
    """Every way to size the template's blanks (one size per blank, plain ones >= 1) within ``room`` tokens."""
    fixed = sum(b for b in template.blanks if b is not None)
    plain = sum(1 for b in template.blanks if b is None)
    spare = room - fixed
    if spare < plain:
        return []
    choices = [s for s in itertools.product(range(1, spare - plain + 2), repeat=plain) if sum(s) <= spare]
    if len(choices) > MAX_SIZINGS:
        raise UserError(f"{len(choices):,} ways to size the {plain} plain blanks (more than {MAX_SIZINGS}): give "
                        f"some of them a size, e.g. ___{{2}}")
    out = []
    for choice in choices:
        it = iter(choice)
        out.append(tuple(b if b is not None else next(it) for b in template.blanks))
    return out


def text_rows(template: Template, tokenizer, vocab, max_len: int, eos: int, pad: int
              ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``(ids [S, max_len], present [S, max_len], unknown tokens)``: one row per sizing of the blanks, the text's
    tokens present, masked slots, then EOS and PAD. UserError when no sizing fits ``max_len - 1`` tokens."""
    import torch

    segments = [vocab_encode(tokenizer, vocab, p) if isinstance(p, str) else None for p in template.pieces]
    text_tokens = sum(len(s[0]) for s in segments if s is not None)
    unknown = [t for s in segments if s is not None for t in s[1]]
    options = sizings(template, max_len - 1 - text_tokens)
    if not options:
        least = text_tokens + sum(b if b is not None else 1 for b in template.blanks)
        raise UserError(f"the text is at least {least} tokens with its blanks, longer than the model's "
                        f"{max_len - 1}")
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
        ids += [eos] + [pad] * (max_len - length - 1)
        present += [True] * (max_len - length)
        rows.append(ids)
        masks.append(present)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks), unknown


def vocab_encode(tokenizer, vocab, text: str) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` and the tokens that are not in the vocabulary (read as ``<unk>``)."""
    from ..data.tokenization import UNK

    tokens = tokenizer.tokenize(text.strip()) if text.strip() else []
    ids = vocab.encode(tokens)
    return ids, [t for t, i in zip(tokens, ids, strict=True) if i == UNK and t != "<unk>"]


def id_row(template: Template, vocab_size: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids [1, max_len], present [1, max_len])`` for a synthetic run: ids and blanks, ``max_len`` in all."""
    import torch

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
    if len(ids) != max_len:
        raise UserError(f"a synthetic run fills sequences of exactly {max_len} tokens; got {len(ids)} (ids and "
                        f"blank sizes)")
    return torch.tensor([ids], dtype=torch.long), torch.tensor([present])


def fill_best(gen, rows: torch.Tensor, present: torch.Tensor, n: int, temperature: float,
              rng: torch.Generator) -> torch.Tensor:
    """``n`` fills ``[n, T]`` of a template given as ``S`` sized rows ``[S, T]``: every sizing is filled ``n`` times
    (one batch), and fill ``i`` is the sizing whose ``i``-th fill has the highest mean per-token log-likelihood
    under the run's language model (``gen.lm``; the in-filler itself when there is one sizing)."""
    import torch

    with torch.no_grad():
        return _fill_best(gen, rows, present, n, temperature, rng)


def _fill_best(gen, rows, present, n, temperature, rng):
    import torch

    sizings_, length = rows.shape
    batch = rows.repeat_interleave(n, dim=0).to(gen.device)  # [S*n, T]: sizing-major
    mask = present.repeat_interleave(n, dim=0).to(gen.device)
    filled, _ = gen.fill(batch, mask, temperature=temperature, generator=rng)  # [S*n, T]
    if sizings_ == 1:
        return filled
    lm = gen.lm
    score = lm.log_probs(filled).sum(1) / lm.token_mask(filled).sum(1).clamp(min=1)  # [S*n]
    best = score.view(sizings_, n).argmax(0)  # [n]
    return filled.view(sizings_, n, length)[best, torch.arange(n, device=best.device)]  # [n, T]


def require_infiller(gen, path: Path) -> None:
    """UserError unless ``gen`` (loaded from ``path``) is a MaskGAN in-filler."""
    if not hasattr(gen, "fill"):
        raise UserError(f"{path}: its generator (kind {gen.kind!r}) does not fill blanks: train it with "
                        f"algorithm = \"maskgan\"")


def _templates(args: argparse.Namespace) -> list[str]:
    if (args.text is None) == (args.file is None):
        raise UserError("give the text to fill, or --file FILE (one template a line), not both")
    if args.text is not None:
        return [args.text]
    from ..files import read_lines

    lines = [line for line in read_lines(args.file) if line.strip()]
    if not lines:
        raise UserError(f"{args.file} has no template (only blank lines)")
    return lines


def _cmd_fill(args: argparse.Namespace) -> int:
    import torch

    from ..runs.checkpoint import load_model
    from .main import _is_text_run

    path = Path(args.run)
    if args.n < 1:
        raise UserError(f"-n must be >= 1, got {args.n}")
    texts = _templates(args)
    model = None
    if _is_text_run(path):
        from ..runs.textmodel import TextModel

        model = TextModel.load(path)
        gen = model.generator
    else:
        gen = load_model(path, "generator")[0]
    require_infiller(gen, path)
    prepared = []
    for number, text in enumerate(texts, 1):  # every template is checked before any is filled
        where = f"template {number}: " if args.file else ""
        try:
            template = parse_template(text, args.blank)
            if model is not None:
                rows, present, unknown = text_rows(template, model.tokenizer, model.vocab, gen.max_len,
                                                   gen.eos_token, gen.pad_token)
                if unknown:
                    shown = ", ".join(repr(t) for t in dict.fromkeys(unknown))
                    print(f"seqgan-kit: note: {where}{len(unknown)} token(s) outside the vocabulary read as <unk>: "
                          f"{shown}", file=sys.stderr)
            else:
                rows, present = id_row(template, gen.vocab_size, gen.max_len)
        except UserError as exc:
            raise UserError(f"{where}{exc}") from None
        prepared.append((rows, present))
    rng = torch.Generator(device=gen.device).manual_seed(args.seed)
    for rows, present in prepared:
        filled = fill_best(gen, rows, present, args.n, args.temperature, rng)
        if model is not None and not args.ids:
            lines = model.decode(filled)
        else:
            lines = [" ".join(map(str, r)) for r in filled.tolist()]
        print("\n".join(lines), flush=True)
    return 0


def register(sub) -> None:
    """Add the ``fill`` sub-command to the CLI's sub-parsers."""
    p = sub.add_parser("fill", help="fill the ___ blanks of a text with a MaskGAN run's in-filler")
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("text", nargs="?", help=f"the text: {BLANK} for one or more tokens, {BLANK}{{k}} for exactly k "
                                           f"(synthetic runs: token ids; a plain blank is one token)")
    p.add_argument("--file", help="fill every line of this file instead (one template a line)")
    p.add_argument("-n", type=int, default=1, help="fills per template (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blank", default=BLANK, help=f"the blank marker (default {BLANK})")
    p.add_argument("--ids", action="store_true", help="text runs: print token ids instead of text")
    p.set_defaults(func=_cmd_fill)
