"""`seqgan-kit eval bleu` and `seqgan-kit eval self-bleu`.

Both read one sentence per line (UTF-8), tokenize it (``--tokenize``), and print BLEU-n for each ``--n`` as
a small table, or one JSON object with ``--json``. With ``--run RUN_DIR`` the run's corpus card decides what the
flags leave open: the tokenizer (``data.eval_tokenizer``), the orders (``data.bleu_orders``) and, for ``bleu``,
the references (the run's test split). Whitespace splitting that leaves one token per line (unspaced text such
as Chinese) is warned about: every BLEU-n with n >= 2 would be 0. The heavy modules (numba kernels, nltk, sacrebleu) are
imported inside the commands so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.tokenization import WORD_TOKENIZERS
from ..errors import UserError

DEFAULT_ORDERS = [2, 3, 4, 5]
DEFAULT_TOKENIZE = "whitespace"
ONE_TOKEN_WARNING = 0.5
"""Warn when more than this share of the lines are one whitespace token each."""


def _add_common(p: argparse.ArgumentParser, what: str = "BLEU orders", default: list[int] = DEFAULT_ORDERS,
                run: bool = True) -> None:
    from_run = ", or the run card's with --run" if run else ""
    p.add_argument("--n", nargs="+", default=None, metavar="N",
                   help=f"{what} to report, each in 1..9, separated by spaces or commas (default: "
                        f"{' '.join(map(str, default))}{from_run})")
    p.add_argument("--tokenize", choices=list(WORD_TOKENIZERS), default=None,
                   help="whitespace: split on spaces (default without --run); char: every non-space character is "
                        "a token (Chinese); treebank: nltk.word_tokenize(line, preserve_line=True), as Texygen")
    if run:
        p.add_argument("--run", metavar="RUN_DIR",
                       help="a text run: tokenize, orders (and bleu's references) from its corpus card")
    p.add_argument("--max-hyp", type=int, metavar="K", help="score only the first K hypothesis lines")
    p.add_argument("--allow-empty", action="store_true",
                   help="read empty lines as empty sentences (no n-grams) instead of rejecting the file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _orders(values: list[str] | list[int] | None, default: list[int] = DEFAULT_ORDERS) -> list[int]:
    """``--n`` as given (``2 3``, ``2,3`` or both), or ``default``."""
    from .sweep import parse_orders

    if values is None:
        return sorted(set(default))
    return parse_orders([str(v) for v in values], "--n")


@dataclass
class RunText:
    """What a run's corpus card says about scoring its text."""

    run_dir: Path
    tokenize: str
    """The name shown: ``char``, ``treebank``, ... or the model tokenizer's kind (empty ``eval_tokenizer``)."""
    split: Callable[[str], list[str]]
    orders: list[int]
    reference_lines: Callable[[], list[str]]


def run_text(path: str) -> RunText:
    """The BLEU settings of the text run ``path`` (its folder or a checkpoint inside it); UserError otherwise."""
    from ..config import from_dict
    from ..data.corpus import load_lines, load_text_pipeline
    from ..data.data_config import DataConfig
    from ..data.tokenization import eval_tokenizer
    from ..runs.rundir import RunDir
    from ..tasks.text import TOKENIZER_DIR

    run_dir = Path(path) if Path(path).is_dir() else Path(path).parent
    raw = RunDir(run_dir).read_config()
    if raw.get("task") != "text":
        raise UserError(f"--run {path}: a {raw.get('task')} run has no corpus card (give a text run)")
    data = from_dict(DataConfig, raw.get("data", {}), "data.")
    tokenizer, _ = load_text_pipeline(data, run_dir / TOKENIZER_DIR)
    seed = int(raw.get("seed", 0))

    def references() -> list[str]:
        lines = load_lines(data, seed=seed)[1]  # the run's test split, as in training
        return [line.lower() for line in lines] if data.lowercase else lines

    return RunText(run_dir, data.eval_tokenizer or data.tokenizer, eval_tokenizer(data.eval_tokenizer, tokenizer),
                   list(data.bleu_orders), references)


def _settings(args: argparse.Namespace) -> tuple[RunText | None, str | Callable[[str], list[str]], str, list[int]]:
    """(the run's text settings or None, the tokenizer, its name, the orders) of ``args``: flags win over the run."""
    run = run_text(args.run) if getattr(args, "run", None) else None
    if args.tokenize is not None:
        split, name = args.tokenize, args.tokenize
    elif run is not None:
        split, name = run.split, run.tokenize
    else:
        split, name = DEFAULT_TOKENIZE, DEFAULT_TOKENIZE
    return run, split, name, _orders(args.n, run.orders if run is not None else DEFAULT_ORDERS)


def warn_one_token(sentences: list[list[str]], name: str, where: str) -> bool:
    """Print a warning (stderr) when whitespace splitting left most lines as one token; True if it did."""
    from ..metrics.text import one_token_share

    share = one_token_share(sentences)
    if name != "whitespace" or share <= ONE_TOKEN_WARNING:
        return False
    print(f"seqgan-kit: warning: {where}: whitespace splitting gives one token per line for {share:.0%} of the "
          f"lines (text without spaces?), so BLEU-n for n >= 2 is 0; use --tokenize char, or --run RUN_DIR to "
          f"take the run's tokenizer", file=sys.stderr)
    return True


def _word_split(kind: str) -> Callable[[str], list[str]]:
    from ..data.tokenization import word_tokenizer

    return word_tokenizer(kind).tokenize


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

    run, split, name, orders = _settings(args)
    max_hyp = _limit(args.max_hyp, "--max-hyp")
    max_ref = _limit(args.max_ref, "--max-ref")
    if args.ref is None and run is None:
        raise UserError("eval bleu needs --ref FILE, or --run RUN_DIR to score against the run's test split")
    hyps = read_sentences(args.hyp, split, max_hyp, allow_empty=args.allow_empty)
    if args.ref is not None:
        refs = read_sentences(args.ref, split, max_ref, allow_empty=args.allow_empty)
        ref_source = args.ref
    else:
        lines = run.reference_lines()
        refs = [t for t in map(split if callable(split) else _word_split(split), lines[:max_ref]) if t]
        ref_source = f"test split of {run.run_dir}"
    warn_one_token(hyps, name, args.hyp)
    scores = bleu(hyps, refs, orders=orders)
    result: dict = {"bleu": {str(n): v for n, v in scores.items()}, "n_hyp": len(hyps), "n_ref": len(refs),
                    "tokenize": name, "ref": ref_source}
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
    _print_table(f"BLEU: {len(hyps)} hypotheses, each against all {len(refs)} references of {ref_source} "
                 f"({name} tokens, nltk method1 smoothing)", "BLEU-n", scores)
    if args.corpus:
        print(f"sacrebleu corpus BLEU-4 (line i vs line i): {result['corpus_bleu']['score']:.2f}  "
              f"{result['corpus_bleu']['signature']}")
    return 0


def _cmd_self_bleu(args: argparse.Namespace) -> int:
    from ..metrics.bleu import self_bleu
    from ..metrics.text import read_sentences

    _, split, name, orders = _settings(args)
    max_hyp = _limit(args.max_hyp, "--max-hyp")
    hyps = read_sentences(args.hyp, split, max_hyp, allow_empty=args.allow_empty)
    warn_one_token(hyps, name, args.hyp)
    if len(hyps) < 2:
        raise UserError(f"{args.hyp}: Self-BLEU needs at least 2 sentences, got {len(hyps)}")
    scores = self_bleu(hyps, orders=orders)
    if args.json:
        print(json.dumps({"self_bleu": {str(n): v for n, v in scores.items()}, "n_hyp": len(hyps),
                          "tokenize": name}))
        return 0
    _print_table(f"Self-BLEU: each of {len(hyps)} sentences against the other {len(hyps) - 1} "
                 f"({name} tokens, nltk method1 smoothing)", "Self-BLEU-n", scores)
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add the BLEU commands to the ``eval`` sub-command group."""
    p = eval_subparsers.add_parser(
        "bleu", help="BLEU-n of generated sentences, each against all references (text-GAN protocol)",
        description="Every hypothesis line is scored with nltk's sentence_bleu (uniform weights, method1 "
                    "smoothing) against all reference lines, and the scores are averaged; exact and fast.")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    p.add_argument("--ref", metavar="FILE",
                   help="reference sentences, one per line (default with --run: the run's test split)")
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
