"""`seqgan-kit eval bleu` and `seqgan-kit eval self-bleu`.

Both read one sentence per line (UTF-8), tokenize it (``--tokenize``), and print BLEU-n for each ``--n`` as
a small table, or one JSON object with ``--json``. The heavy modules (numba kernels, nltk, sacrebleu) are
imported inside the commands so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json

from ..data.tokenization import WORD_TOKENIZERS
from ..errors import UserError

DEFAULT_ORDERS = [2, 3, 4, 5]


def _add_common(p: argparse.ArgumentParser, what: str = "BLEU orders", default: list[int] = DEFAULT_ORDERS) -> None:
    p.add_argument("--n", type=int, nargs="+", default=default, metavar="N",
                   help=f"{what} to report, each in 1..9 (default: {' '.join(map(str, default))})")
    p.add_argument("--tokenize", choices=list(WORD_TOKENIZERS), default="whitespace",
                   help="whitespace: split on spaces (default); char: every non-space character is a token "
                        "(Chinese); treebank: nltk.word_tokenize(line, preserve_line=True), as Texygen")
    p.add_argument("--max-hyp", type=int, metavar="K", help="score only the first K hypothesis lines")
    p.add_argument("--allow-empty", action="store_true",
                   help="read empty lines as empty sentences (no n-grams) instead of rejecting the file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _orders(values: list[int]) -> list[int]:
    from ..metrics.ngrams import MAX_ORDER

    bad = [n for n in values if not 1 <= n <= MAX_ORDER]
    if bad:
        raise UserError(f"--n must be in 1..{MAX_ORDER}, got {bad[0]}")
    return sorted(set(values))


def _limit(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1, got {value}")
    return value


def _print_table(title: str, label: str, scores: dict[int, float]) -> None:
    print(title)
    print(f"{'n':>3}  {label}")
    for n, value in scores.items():
        print(f"{n:>3}  {value:.4f}")


def _cmd_bleu(args: argparse.Namespace) -> int:
    from ..metrics.bleu import bleu
    from ..metrics.text import read_sentences

    orders = _orders(args.n)
    max_hyp = _limit(args.max_hyp, "--max-hyp")
    max_ref = _limit(args.max_ref, "--max-ref")
    hyps = read_sentences(args.hyp, args.tokenize, max_hyp, allow_empty=args.allow_empty)
    refs = read_sentences(args.ref, args.tokenize, max_ref, allow_empty=args.allow_empty)
    scores = bleu(hyps, refs, orders=orders)
    result: dict = {"bleu": {str(n): v for n, v in scores.items()}, "n_hyp": len(hyps), "n_ref": len(refs),
                    "tokenize": args.tokenize}
    if args.corpus:
        from ..metrics.corpus_bleu import corpus_bleu

        if len(hyps) != len(refs):
            raise UserError(f"--corpus pairs hypothesis line i with reference line i, but there are "
                            f"{len(hyps)} hypotheses and {len(refs)} references (use --max-hyp/--max-ref to "
                            "align them)")
        corpus = corpus_bleu(hyps, refs)
        result["corpus_bleu"] = {"score": corpus.score, "signature": corpus.signature}
    if args.json:
        print(json.dumps(result))
        return 0
    _print_table(f"BLEU: {len(hyps)} hypotheses, each against all {len(refs)} references "
                 f"({args.tokenize} tokens, nltk method1 smoothing)", "BLEU-n", scores)
    if args.corpus:
        print(f"sacrebleu corpus BLEU-4 (line i vs line i): {result['corpus_bleu']['score']:.2f}  "
              f"{result['corpus_bleu']['signature']}")
    return 0


def _cmd_self_bleu(args: argparse.Namespace) -> int:
    from ..metrics.bleu import self_bleu
    from ..metrics.text import read_sentences

    orders = _orders(args.n)
    max_hyp = _limit(args.max_hyp, "--max-hyp")
    hyps = read_sentences(args.hyp, args.tokenize, max_hyp, allow_empty=args.allow_empty)
    if len(hyps) < 2:
        raise UserError(f"{args.hyp}: Self-BLEU needs at least 2 sentences, got {len(hyps)}")
    scores = self_bleu(hyps, orders=orders)
    if args.json:
        print(json.dumps({"self_bleu": {str(n): v for n, v in scores.items()}, "n_hyp": len(hyps),
                          "tokenize": args.tokenize}))
        return 0
    _print_table(f"Self-BLEU: each of {len(hyps)} sentences against the other {len(hyps) - 1} "
                 f"({args.tokenize} tokens, nltk method1 smoothing)", "Self-BLEU-n", scores)
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add the BLEU commands to the ``eval`` sub-command group."""
    p = eval_subparsers.add_parser(
        "bleu", help="BLEU-n of generated sentences, each against all references (text-GAN protocol)",
        description="Every hypothesis line is scored with nltk's sentence_bleu (uniform weights, method1 "
                    "smoothing) against all reference lines, and the scores are averaged; exact and fast.")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference sentences, one per line")
    p.add_argument("--max-ref", type=int, metavar="K", help="use only the first K reference lines")
    p.add_argument("--corpus", action="store_true",
                   help="also report sacrebleu's corpus BLEU-4 with its signature (pairs line i with line i)")
    _add_common(p)
    p.set_defaults(func=_cmd_bleu)

    p = eval_subparsers.add_parser(
        "self-bleu", help="Self-BLEU-n: each generated sentence against all the others (leave one out)",
        description="Every line is scored with nltk's sentence_bleu (uniform weights, method1 smoothing) "
                    "against all the other lines, and the scores are averaged; exact and fast.")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    _add_common(p)
    p.set_defaults(func=_cmd_self_bleu)

    from .sweep import register_sweep

    register_sweep(eval_subparsers)
