"""``seqgan-kit fill RUN_DIR "text with ___ blanks"``: fill the blanks with a MaskGAN run's in-filler.

A blank is ``___`` (``--blank`` changes the marker) or ``___{k}`` for exactly ``k`` tokens.

- Text runs: the segments between blanks are tokenized with the run's tokenizer (a token outside the
  vocabulary is read as ``<unk>``, and the command says which). A plain ``___`` is one or more tokens: every
  way of sizing the plain blanks that fits the model's length is filled, and each of the ``-n`` fills keeps the
  sizing whose filled sentence the run's language model (the MLE generator inside the in-filler) finds most
  likely per token.
- Synthetic runs: the text is token ids and blanks, exactly ``seq_len`` tokens counting each blank's size
  (a plain ``___`` is one token).

Each blank is sampled left to right given everything present, before and after it (the in-filler's encoder
reads the whole masked sequence); the real tokens are copied. ``--file FILE`` fills every line of a file (one
template a line); all templates are checked before any is filled. Output: one fill a line (text runs
detokenized, ``--ids`` token ids), ``-n`` lines per template, in template order.

The work is :mod:`seqgan_kit.infill` (templates, blank sizing, filling); this module reads the arguments and
prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError

BLANK = "___"  # seqgan_kit.infill.templates.BLANK, repeated so that building the parser imports no torch


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

    from ..infill.filling import check_fill_args, fill_chunks, require_infiller
    from ..infill.templates import id_row, parse_template, text_rows
    from ..runs.checkpoint import load_model
    from ..runs.rundir import RunDir

    path = Path(args.run)
    check_fill_args(args.n, args.temperature)
    texts = _templates(args)
    model = None
    if RunDir.holding(path).is_text_run():
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
                rows, present, unknown = text_rows(template, model.tokenizer, model.vocab, gen.seq_len,
                                                   gen.eos_token, gen.pad_token)
                if unknown:
                    shown = ", ".join(repr(t) for t in dict.fromkeys(unknown))
                    print(f"seqgan-kit: note: {where}{len(unknown)} token(s) outside the vocabulary read as <unk>: "
                          f"{shown}", file=sys.stderr)
            else:
                rows, present = id_row(template, gen.vocab_size, gen.seq_len)
        except UserError as exc:
            raise UserError(f"{where}{exc}") from None
        prepared.append((rows, present))
    rng = torch.Generator(device=gen.device).manual_seed(args.seed)
    for rows, present in prepared:
        for filled in fill_chunks(gen, rows, present, args.n, args.temperature, rng):  # [k, T] each
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
