"""`seqgan-kit eval distinct` and `seqgan-kit eval infill`: MaskGAN's evaluation measures (Fedus et al. 2018).

- ``eval distinct FILE``: the paper's "% unique n-grams" of a file of samples, one sentence a line: for each
  order n, pooled over all sentences, ``100 * distinct n-grams / n-gram occurrences``
  (:func:`seqgan_kit.metrics.infill.distinct_ngrams`). Same reading flags as ``eval bleu``.
- ``eval infill RUN``: a MaskGAN text run fills masked held-out sentences (the run's test split or ``--ref``).
  On the masked positions only, in the model's token space: the teacher-forced NLL and perplexity, the share of
  fills equal to the original token, and sacrebleu corpus BLEU-2/3/4 of each row's filled tokens against its
  real ones.

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
from .fill import require_infiller

if TYPE_CHECKING:
    import torch

    from ..metrics.infill import MaskSpec
    from ..runs.textmodel import TextModel

DISTINCT_ORDERS = [2, 3, 4]
INFILL_BLEU_ORDERS = (2, 3, 4)
DEFAULT_RATE = 0.5
"""``--rate`` when the run's ``maskgan.is_present_rate`` is 0 (an unconditional run) or missing."""


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


# --------------------------------------------------------------------------- eval infill: checks
def _check_args(args: argparse.Namespace) -> MaskSpec | None:
    """Everything that needs no model: UserError on the first bad value; the parsed --mask (None: not given)."""
    from ..metrics.infill import PREFIX, parse_mask

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


def _load(path: Path) -> tuple[TextModel, dict[str, Any]]:
    """The run's TextModel and its ``[maskgan]`` settings; UserError unless it is a MaskGAN text run."""
    from ..runs.rundir import RunDir
    from ..runs.textmodel import TextModel
    from .main import _is_text_run

    if not path.exists():
        raise UserError(f"not found: {path}")
    if not _is_text_run(path):
        raise UserError(f"{path} is not a text run: eval infill scores in-filling of held-out text (a synthetic "
                        f"run's in-filler fills token ids with `seqgan-kit fill`)")
    run_dir = path if path.is_dir() else path.parent
    settings = RunDir(run_dir).read_config().get("maskgan", {})
    model = TextModel.load(path)
    require_infiller(model.generator, path)
    return model, settings


def _resolve_mask(spec: MaskSpec | None, rate: float | None, settings: dict[str, Any], seq_len: int
                  ) -> tuple[MaskSpec, float | None]:
    """The mask and keep rate to use (defaults from the run's ``[maskgan]``); UserError if it masks nothing."""
    from ..metrics.infill import PREFIX, MaskSpec
    from ..rl.masks import masked_span_length

    if spec is None:
        spec = MaskSpec(settings.get("mask_strategy", "contiguous"))
    if spec.strategy == PREFIX:
        if not spec.keep < seq_len:
            raise UserError(f"--mask {spec}: the model's sequences have {seq_len} positions (EOS included), so K "
                            f"must be below {seq_len}")
        return spec, None
    if rate is None:
        rate = float(settings.get("is_present_rate") or DEFAULT_RATE)
    if spec.strategy == "contiguous" and masked_span_length(seq_len, rate) < 1:
        raise UserError(f"--rate {rate} masks no token of a {seq_len}-position sequence with contiguous masks; "
                        f"lower it")
    return spec, rate


# --------------------------------------------------------------------------- eval infill: data
def _sentences(model: TextModel, ref: str | None) -> tuple[list[str], str]:
    """The held-out text: the run's test split (as training splits it) or a file; and where it came from."""
    from ..data.corpus import load_lines
    from ..files import read_lines

    if ref is None:
        lines, source = load_lines(model.data, seed=model.seed)[1], "the run's test split"
    else:
        lines, source = read_lines(ref), ref
    if model.data.lowercase:
        lines = [line.lower() for line in lines]
    return lines, source


def _rows(model: TextModel, lines: list[str], n: int, seed: int, source: str) -> tuple[torch.Tensor, int]:
    """``rows [min(n, S), T]`` int64 (ids, EOS, PAD; ``T = gen.max_len``) of ``n`` sentences picked by a seeded
    permutation of the ``S`` that have a token, and how many of them were truncated to ``T - 1`` tokens."""
    import torch

    from ..data.corpus import encode_examples

    tokens = [t for t in map(model.tokenizer.tokenize, lines) if t]
    if not tokens:
        raise UserError(f"no sentence with a token in {source}")
    order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    rows, truncated = encode_examples([tokens[i] for i in order], model.vocab, model.generator.max_len - 1)
    return rows, truncated


# --------------------------------------------------------------------------- eval infill: scoring
def eval_present(gen: Any, spec: MaskSpec, rows: torch.Tensor, rate: float | None, seed: int) -> torch.Tensor:
    """``present [N, T]`` bool (CPU) for ``rows [N, T]``: the mask of ``spec`` (seeded; token 0 always given),
    then the generator's ``keep_structure`` (EOS and the padding after it are never filled)."""
    from ..metrics.infill import build_present

    present = build_present(spec, rows.shape[0], rows.shape[1], rate or 0.0, seed)  # [N, T]
    return gen.keep_structure(rows.to(gen.device), present.to(gen.device)).cpu()


def _score(model: TextModel, rows: torch.Tensor, present: torch.Tensor, temperature: float, seed: int
           ) -> tuple[float, float | None, int, torch.Tensor]:
    """Summed masked NLL of the in-filler and of its wrapped language model (left context only, EOS excluded
    like the in-filler's; None without one), the masked token count and the fills ``[N, T]``, in chunks of
    ``eval.batch_size``."""
    import torch

    from ..metrics.infill import masked_nll

    gen = model.generator
    lm = getattr(gen, "lm", None)
    chunk = model.eval_cfg.batch_size
    rng = torch.Generator(device=gen.device).manual_seed(seed)
    nll_sum, lm_sum, count, fills = 0.0, 0.0, 0, []
    with torch.no_grad():
        for lo in range(0, len(rows), chunk):
            seqs = rows[lo:lo + chunk].to(gen.device)
            mask = present[lo:lo + chunk].to(gen.device)
            total, k = masked_nll(gen.teacher_forced(seqs, mask), seqs, mask)
            nll_sum, count = nll_sum + total, count + k
            if lm is not None:
                lm_sum += masked_nll(lm(seqs) + gen.fill_bias, seqs, mask)[0]  # [B, T, V], EOS banned
            filled, _ = gen.fill(seqs, mask, temperature=temperature, generator=rng)
            fills.append(filled.cpu())
    return nll_sum, lm_sum if lm is not None else None, count, torch.cat(fills)


def _bleu(filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor) -> tuple[dict[int, float], str]:
    """sacrebleu corpus BLEU-n (0-100) of each row's filled masked tokens against its real ones, and the
    signature of the BLEU-4 metric."""
    from ..metrics.corpus_bleu import corpus_bleu
    from ..metrics.infill import masked_spans

    hyps, refs = masked_spans(filled, real, present)
    scores, signature = {}, ""
    for n in INFILL_BLEU_ORDERS:
        result = corpus_bleu(hyps, refs, max_order=n)
        scores[n], signature = result.score, result.signature
    return scores, signature


def _examples(model: TextModel, filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor, k: int
              ) -> list[dict[str, Any]]:
    """The first ``k`` rows as text: context (each masked run shown as ``___``), original, fill, and the spans."""
    from ..data.corpus import row_lengths
    from ..metrics.infill import masked_runs

    tokens, detok = model.vocab.tokens, model.tokenizer.detokenize
    out = []
    lengths = row_lengths(real[:k]).tolist()
    for row in range(min(k, len(real))):
        length = lengths[row]
        ids, fill_ids = real[row, :length].tolist(), filled[row, :length].tolist()
        runs = masked_runs(present[row, :length].tolist())
        context, spans, at = [], [], 0
        for start, stop in runs:
            if start > at:
                context.append(detok([tokens[i] for i in ids[at:start]]))
            context.append("___")
            spans.append({"original": detok([tokens[i] for i in ids[start:stop]]),
                          "fill": detok([tokens[i] for i in fill_ids[start:stop]])})
            at = stop
        if at < length:
            context.append(detok([tokens[i] for i in ids[at:length]]))
        out.append({"context": " ".join(context), "original": model.decode(real[row:row + 1])[0],
                    "fill": model.decode(filled[row:row + 1])[0], "spans": spans})
    return out


def _cmd_infill(args: argparse.Namespace) -> int:
    from ..metrics.infill import token_accuracy

    spec = _check_args(args)
    path = Path(args.run)
    model, settings = _load(path)
    gen = model.generator
    spec, rate = _resolve_mask(spec, args.rate, settings, gen.max_len)
    lines, source = _sentences(model, args.ref)
    rows, truncated = _rows(model, lines, args.n, args.seed, source)
    if len(rows) < args.n:
        print(f"seqgan-kit: note: {source} has {len(rows)} sentences with a token, fewer than -n {args.n}: "
              f"scoring all of them", file=sys.stderr)
    present = eval_present(gen, spec, rows, rate, args.seed)
    scored = (~present).any(dim=1)  # [N]
    if not bool(scored.any()):
        raise UserError(f"no sentence has a masked token under --mask {spec}"
                        + (f" --rate {rate}" if rate is not None else "") + " (the mask fell on EOS and padding)")
    rows, present = rows[scored], present[scored]
    nll_sum, lm_sum, count, filled = _score(model, rows, present, args.temperature, args.seed)
    nll = nll_sum / count
    lm_nll = None if lm_sum is None else lm_sum / count
    bleu, signature = _bleu(filled, rows, present)
    result: dict[str, Any] = {
        "run": str(path), "source": source, "rows": len(scored), "scored_rows": len(rows),
        "dropped_rows": len(scored) - len(rows), "truncated": truncated, "masked_tokens": count,
        "mask": str(spec), "rate": rate, "seed": args.seed, "temperature": args.temperature,
        "masked_nll": nll, "masked_perplexity": _perplexity(nll),
        "lm_masked_nll": lm_nll, "lm_masked_perplexity": None if lm_nll is None else _perplexity(lm_nll),
        "token_accuracy": token_accuracy(filled, rows, present),
        "bleu": {str(n): v for n, v in bleu.items()}, "bleu_signature": signature,
        "examples": _examples(model, filled, rows, present, args.examples),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    _print_infill(result, bleu)
    return 0


def _perplexity(nll: float) -> float:
    return math.exp(nll) if nll < 700 else math.inf


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
