"""`seqgan-kit eval distinct` and `seqgan-kit eval infill`: MaskGAN's evaluation measures (Fedus et al. 2018).

- ``eval distinct FILE``: the paper's "% unique n-grams" of a file of samples, one sentence a line: for each
  order n, pooled over all sentences, ``100 * distinct n-grams / n-gram occurrences``
  (:func:`seqgan_kit.metrics.infill.distinct_ngrams`). Same reading flags as ``eval bleu``.
- ``eval infill RUN``: a MaskGAN text run fills masked held-out sentences (the run's test split or ``--ref``).
  On the masked positions only, in the model's token space: the teacher-forced NLL and perplexity, the share of
  fills equal to the original token, and sacrebleu corpus BLEU-2/3/4 of each row's filled tokens against its
  real ones. The work is :func:`seqgan_kit.infill.scoring.evaluate_infill`; this module parses and prints.

The heavy modules (torch, sacrebleu) are imported inside the commands so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from .eval_metrics import _add_common, _limit, _orders, _print_table

if TYPE_CHECKING:
    from ..models.masks import MaskSpec

DISTINCT_ORDERS = [2, 3, 4]
DEFAULT_RATE = 0.5
"""``--rate`` when the run's ``maskgan.is_present_rate`` is 0 (an unconditional run) or missing (the help text;
the value is :data:`seqgan_kit.infill.scoring.DEFAULT_RATE`)."""


# --------------------------------------------------------------------------- eval distinct
def _cmd_distinct(args: argparse.Namespace) -> int:
    from ..metrics.infill import ngram_counts
    from ..metrics.text import read_sentences

    orders = _orders(args.n, DISTINCT_ORDERS)
    args.tokenize = args.tokenize or "whitespace"
    max_hyp = _limit(args.max_hyp, "--max-hyp")
    sentences = read_sentences(args.file, args.tokenize, max_hyp, allow_empty=args.allow_empty)
    counts = ngram_counts(sentences, orders)
    scores = {n: 100.0 * d / t if t else 0.0 for n, (d, t) in counts.items()}
    if args.json:
        print(json.dumps({"distinct": {str(n): v for n, v in scores.items()},
                          "distinct_ngrams": {str(n): d for n, (d, _) in counts.items()},
                          "total_ngrams": {str(n): t for n, (_, t) in counts.items()},
                          "n_sentences": len(sentences), "tokenize": args.tokenize}))
        return 0
    _print_table(f"% unique n-grams: 100 x distinct / all n-grams, pooled over {len(sentences)} sentences "
                 f"({args.tokenize} tokens)", "% unique", scores)
    print("n-grams (distinct / all): " + ", ".join(f"{n}: {d}/{t}" for n, (d, t) in counts.items()))
    return 0


# --------------------------------------------------------------------------- eval infill
def _check_args(args: argparse.Namespace) -> MaskSpec | None:
    """Everything that needs no model: UserError on the first bad value; the parsed --mask (None: not given)."""
    from ..models.masks import PREFIX, parse_mask

    try:
        spec = parse_mask(args.mask) if args.mask is not None else None
    except ValueError as exc:
        raise UserError(f"--mask: {exc}") from None
    if args.rate is not None:
        if not (math.isfinite(args.rate) and 0.0 <= args.rate < 1.0):
            raise UserError(f"--rate (the fraction of tokens kept) must be in [0, 1), got {args.rate}")
        if spec is not None and spec.strategy == PREFIX:
            raise UserError(f"--rate does not apply to --mask {spec}: it keeps exactly {spec.keep} tokens")
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    if args.examples < 0:
        raise UserError(f"--examples must be >= 0, got {args.examples}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise UserError(f"--temperature must be a finite number >= 0 (0 = greedy), got {args.temperature}")
    return spec


def _cmd_infill(args: argparse.Namespace) -> int:
    from ..infill.scoring import evaluate_infill, load_infiller

    spec = _check_args(args)
    model, settings = load_infiller(args.run)
    notes: list[str] = []
    result = {"run": str(Path(args.run)), **evaluate_infill(
        model, settings, spec, args.rate, n=args.n, seed=args.seed, temperature=args.temperature, ref=args.ref,
        n_examples=args.examples, notes=notes)}
    for note in notes:
        print(f"seqgan-kit: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    _print_infill(result, {int(k): v for k, v in result["bleu"].items()})
    return 0


def _print_infill(result: dict[str, Any], bleu: dict[int, float]) -> None:
    rate = f", keep rate {result['rate']}" if result["rate"] is not None else ""
    print(f"In-filling {result['rows']} sentences of {result['source']} (mask {result['mask']}{rate}, seed "
          f"{result['seed']}, temperature {result['temperature']}); {result['dropped_rows']} without a masked "
          f"token dropped, {result['masked_tokens']} masked tokens in {result['scored_rows']} rows")
    print(f"masked NLL         {result['masked_nll']:.4f}  (teacher-forced, nats per masked token)")
    print(f"masked perplexity  {result['masked_perplexity']:.4f}")
    if result["lm_masked_nll"] is not None:
        print(f"LM, left context   {result['lm_masked_perplexity']:.4f}  (perplexity of the run's pretraining LM at "
              f"the same positions)")
    print(f"token accuracy     {result['token_accuracy']:.2f}%  (fills equal to the original token)")
    _print_table("in-fill BLEU (sacrebleu corpus BLEU, 0-100, filled vs original tokens at the masked positions)",
                 "BLEU-n", bleu)
    for i, ex in enumerate(result["examples"], 1):
        print(f"\nexample {i}\n  context:  {ex['context']}\n  original: {ex['original']}\n  fill:     {ex['fill']}")


# --------------------------------------------------------------------------- parser
def register(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add ``distinct`` and ``infill`` to the ``eval`` sub-command group."""
    p = eval_subparsers.add_parser(
        "distinct", help="MaskGAN's %% unique n-grams of a file of samples (diversity)",
        description="For each order n, pooled over all sentences of the file: 100 x (number of distinct "
                    "n-grams) / (number of n-grams). A sentence shorter than n has no n-gram of order n.")
    p.add_argument("file", metavar="FILE", help="sentences, one per line")
    _add_common(p, "n-gram orders", DISTINCT_ORDERS, run=False)
    p.set_defaults(func=_cmd_distinct)

    p = eval_subparsers.add_parser(
        "infill", help="a MaskGAN text run's in-filling of held-out text: masked NLL, token accuracy, BLEU",
        description="Masks held-out sentences (the run's test split, or --ref), lets the run's in-filler fill "
                    "them, and scores the masked positions only (EOS and padding are never masked): the "
                    "teacher-forced NLL and perplexity, the % of fills equal to the original, and sacrebleu "
                    "corpus BLEU-2/3/4 of each row's filled tokens against its original ones.")
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--mask", metavar="contiguous|random|prefix:K",
                   help="contiguous: one masked span; random: each token kept with probability --rate; "
                        "prefix:K: keep the first K tokens, fill the rest (default: the run's maskgan.mask_strategy)")
    p.add_argument("--rate", type=float, help="fraction of tokens kept, in [0, 1) (default: the run's "
                                              f"maskgan.is_present_rate, or {DEFAULT_RATE} when that is 0)")
    p.add_argument("-n", type=int, default=1000, help="sentences to evaluate (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="picks the sentences, the masks and the fills (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the fills; 0 = greedy")
    p.add_argument("--examples", type=int, default=0, metavar="K", help="show the first K scored rows")
    p.add_argument("--ref", metavar="FILE", help="held-out sentences, one a line (default: the run's test split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_infill)
