"""``seqgan-kit fill RUN_DIR "text with ___ blanks"``: fill the blanks with a MaskGAN run's in-filler.

Each blank (``___`` by default) is one token. A text run's input is text (the segments between blanks are
tokenized with the run's tokenizer); a synthetic run's input is token ids separated by spaces, exactly
``max_len`` of them counting the blanks. The filled sequences are printed one per line (text runs: detokenized;
``--ids``: token ids). The real tokens are copied; each blank is sampled left to right given everything present,
before and after it (the in-filler's encoder reads the whole masked sequence).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

BLANK = "___"


def _segments(text: str, blank: str) -> list[str]:
    parts = text.split(blank)
    if len(parts) < 2:
        raise UserError(f"no blank {blank!r} in the text to fill")
    return parts


def text_row(text: str, blank: str, tokenizer, vocab, max_len: int, eos: int, pad: int):
    """``(ids [max_len], present [max_len])`` for a text run: tokens, one masked slot per blank, EOS, PAD."""
    import torch

    ids: list[int] = []
    present: list[bool] = []
    parts = _segments(text, blank)
    for i, part in enumerate(parts):
        tokens = vocab.encode(tokenizer.tokenize(part.strip())) if part.strip() else []
        ids += tokens
        present += [True] * len(tokens)
        if i + 1 < len(parts):
            ids.append(pad)  # a placeholder, never read: the slot is masked
            present.append(False)
    if len(ids) + 1 > max_len:
        raise UserError(f"the text is {len(ids)} tokens with its blanks, longer than the model's {max_len - 1}")
    length = len(ids)
    ids += [eos] + [pad] * (max_len - length - 1)
    present += [True] * (max_len - length)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(present)


def id_row(text: str, blank: str, vocab_size: int, max_len: int):
    """``(ids, present)`` for a synthetic run: exactly ``max_len`` ids or blanks."""
    import torch

    _segments(text, blank)
    items = text.replace(blank, f" {blank} ").split()
    if len(items) != max_len:
        raise UserError(f"a synthetic run fills sequences of exactly {max_len} tokens; got {len(items)} (ids and "
                        f"blanks)")
    ids, present = [], []
    for item in items:
        if item == blank:
            ids.append(0)
            present.append(False)
            continue
        try:
            token = int(item)
        except ValueError:
            raise UserError(f"a synthetic run's text is token ids and blanks; got {item!r}") from None
        if not 0 <= token < vocab_size:
            raise UserError(f"token id {token} outside the vocabulary of size {vocab_size}")
        ids.append(token)
        present.append(True)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(present)


def _cmd_fill(args: argparse.Namespace) -> int:
    import torch

    from ..runs.checkpoint import load_model
    from .main import _is_text_run

    path = Path(args.run)
    if args.n < 1:
        raise UserError(f"-n must be >= 1, got {args.n}")
    model = None
    if _is_text_run(path):
        from ..runs.textmodel import TextModel

        model = TextModel.load(path)
        gen = model.generator
    else:
        gen = load_model(path, "generator")[0]
    if not hasattr(gen, "fill"):
        raise UserError(f"{path}: its generator (kind {gen.kind!r}) does not fill blanks: train it with "
                        f"algorithm = \"maskgan\"")
    if model is not None:
        row, present = text_row(args.text, args.blank, model.tokenizer, model.vocab, gen.max_len, gen.eos_token,
                                gen.pad_token)
    else:
        row, present = id_row(args.text, args.blank, gen.vocab_size, gen.max_len)
    rng = torch.Generator(device=gen.device).manual_seed(args.seed)
    with torch.no_grad():
        filled, _ = gen.fill(row.repeat(args.n, 1).to(gen.device), present.repeat(args.n, 1).to(gen.device),
                             temperature=args.temperature, generator=rng)
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
    p.add_argument("text", help=f"the text, one {BLANK} per missing token (synthetic runs: token ids)")
    p.add_argument("-n", type=int, default=1, help="number of fills (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blank", default=BLANK, help=f"the blank marker (default {BLANK})")
    p.add_argument("--ids", action="store_true", help="text runs: print token ids instead of text")
    p.set_defaults(func=_cmd_fill)
