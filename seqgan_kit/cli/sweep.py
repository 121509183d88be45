"""`seqgan-kit eval sweep`: quality–diversity curves of one or more text runs over a temperature sweep.

::

    seqgan-kit eval sweep RUN_DIR [RUN_DIR ...] --temperatures 0.5,0.75,1.0,1.25,1.5 [--ref FILE] [-n 1000]
        [--orders 2,3] [--max-ref N] [--self-bleu-samples N] [--seed 0] [--out DIR] [--json]

Prints a table (run, temperature, BLEU-n..., Self-BLEU-n...), or one JSON object with ``--json``; ``--out DIR``
writes ``sweep.json``, ``sweep.md`` and one ``sweep_bleu{n}.png`` per order, all runs on one plot. See
:mod:`seqgan_kit.metrics.sweep` for what is measured. Runs are loaded with :func:`load_model`, the one seam
tests replace.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..files import atomic_write

if TYPE_CHECKING:  # the sweep module imports the numba kernels; keep building the parser fast
    from ..metrics.sweep import SweepModel

DEFAULT_TEMPERATURES = "0.5,0.75,1.0,1.25,1.5"


def load_model(path: str) -> SweepModel:
    """Load a text run (a run directory or a checkpoint inside one)."""
    from ..runs.textmodel import TextModel

    return TextModel.load(path)


def split_list(values: str | list[str], flag: str) -> list[str]:
    """The items of a list flag given either way, ``2,3`` or ``2 3`` (or mixed): one syntax for every list."""
    texts = [values] if isinstance(values, str) else list(values)
    items = []
    for text in texts:  # "2, 3" arrives as "2," and "3": a comma at either end of a word is a separator
        parts = [part.strip() for part in text.strip().split(",")]
        items += parts[1 if len(parts) > 1 and not parts[0] else 0:-1 if len(parts) > 1 and not parts[-1] else None]
    if not items or not all(items):
        raise UserError(f"{flag} takes a comma-separated list (or a space-separated one), e.g. {flag} 2,3 or "
                        f"{flag} 2 3, got {' '.join(texts)!r}")
    return items


def parse_temperatures(text: str | list[str]) -> list[float]:
    """``"1.0,0.5,0"`` (or ``["1.0", "0.5", "0"]``) -> ``[0.0, 0.5, 1.0]``: finite numbers >= 0, sorted
    ascending, duplicates dropped."""
    values = []
    for item in split_list(text, "--temperatures"):
        try:
            t = float(item)
        except ValueError:
            raise UserError(f"--temperatures: {item!r} is not a number") from None
        if not math.isfinite(t) or t < 0:
            raise UserError(f"--temperatures must be finite and >= 0 (0 = greedy), got {item}")
        values.append(t)
    return sorted(set(values))


def parse_orders(text: str | list[str], flag: str = "--orders") -> list[int]:
    """``"3,2"`` (or ``["3", "2"]``, ``["3,2"]``) -> ``[2, 3]``: BLEU orders in 1..9."""
    from ..metrics.ngrams import MAX_ORDER

    values = []
    for item in split_list(text, flag):
        try:
            n = int(item)
        except ValueError:
            raise UserError(f"{flag}: {item!r} is not an integer") from None
        if not 1 <= n <= MAX_ORDER:
            raise UserError(f"{flag} must be in 1..{MAX_ORDER}, got {n}")
        values.append(n)
    return sorted(set(values))


def _check_same_corpus(models: list[SweepModel], paths: list[str]) -> None:
    first, first_path = models[0], paths[0]
    for model, path in zip(models[1:], paths[1:], strict=True):
        if model.corpus != first.corpus:
            raise UserError(f"{path} was trained on {model.corpus}, {first_path} on {first.corpus}: a sweep "
                            "compares runs of one corpus")
        if model.vocab_fingerprint != first.vocab_fingerprint:
            raise UserError(f"{path} and {first_path} were both trained on {first.corpus} but with different "
                            f"vocabularies ({model.vocab_fingerprint} vs {first.vocab_fingerprint}): a sweep "
                            "compares runs of one corpus and vocabulary")


def split_label(arg: str) -> tuple[str | None, str]:
    """``"LABEL=PATH"`` -> ``(LABEL, PATH)`` when PATH exists and ``arg`` itself does not; else ``(None, arg)``."""
    label, sep, path = arg.partition("=")
    if sep and label and Path(path).exists() and not Path(arg).exists():
        return label, path
    return None, arg


def _labels(models: list[SweepModel], paths: list[str], given: list[str | None]) -> list[str]:
    """The label given (``LABEL=PATH``), else the run's name; the path as given where two runs share a name."""
    names = [g or m.name for g, m in zip(given, models, strict=True)]
    labels = [name if g or names.count(name) == 1 else path
              for g, name, path in zip(given, names, paths, strict=True)]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise UserError(f"{paths[i]} is given twice (or two runs share the label {label!r})")
    return labels


def _write_outputs(out: Path, result: dict[str, Any], table_md: str, summary: str, gaps_md: str) -> list[Path]:
    from ..metrics.sweep import plot_sweep

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out directory {out}: {exc.strerror or exc}") from None
    written = [out / "sweep.json", out / "sweep.md"]
    atomic_write(written[0], json.dumps(result, indent=1) + "\n")
    plots = [f"sweep_bleu{o}.png" for o in result["orders"]]
    md = (f"# Quality–diversity sweep\n\n{summary}\n\n{table_md}\n" + (f"{gaps_md}\n" if gaps_md else "")
          + "".join(f"![BLEU-{o} vs Self-BLEU-{o}]({name})\n" for o, name in zip(result["orders"], plots,
                                                                                 strict=True)))
    atomic_write(written[1], md)
    for order, name in zip(result["orders"], plots, strict=True):
        plot_sweep(result["runs"], order, out / name)
        written.append(out / name)
    return written


def _fed_axis(args: argparse.Namespace, first: SweepModel) -> tuple[Any, dict[str, Any] | None]:
    """With ``--encoder RUN``: a function (sample texts -> FED against the reference texts) and what it uses."""
    if not args.encoder:
        return None, None
    from ..data.corpus import load_lines
    from ..encoders.loading import check_coverage, load_encoder
    from ..files import read_lines
    from ..metrics.embedding import fed, fed_error, min_samples

    encoder = load_encoder(args.encoder, pooling=args.pooling)
    theirs = (first.corpus, getattr(getattr(first, "data", None), "tokenizer", encoder.cfg.data.tokenizer))
    if theirs != (encoder.corpus, encoder.cfg.data.tokenizer):
        raise UserError(f"--encoder {args.encoder} was trained on corpus {encoder.corpus!r} "
                        f"({encoder.cfg.data.tokenizer} tokens), the swept runs on {theirs[0]!r} ({theirs[1]} "
                        f"tokens): use an encoder of the same corpus and tokenizer")
    if args.ref is not None:
        texts = [t for t in read_lines(args.ref) if t.strip()]
    else:
        texts = load_lines(first.data, seed=first.seed)[1]
    texts = texts[:args.max_ref] if args.max_ref else texts
    check_coverage(encoder, texts, args.ref or f"test split of {split_label(args.runs[0])[1]}")
    for what, n in (("references", len(texts)), (f"-n {args.n} samples", args.n)):
        if n < min_samples(encoder.dim):
            raise fed_error(n, encoder.dim, f"eval sweep --encoder: {what}", "raise -n or give more references")
    x_ref = encoder.embed(texts)
    return (lambda samples: fed(x_ref, encoder.embed(samples)),
            {"encoder": encoder.describe(), "label": encoder.label, "n_ref": len(texts), "n_samples": args.n})


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ..metrics.sweep import (
        check_references,
        default_orders,
        format_gaps,
        format_table,
        gaps_to_baseline,
        quality_diversity,
    )

    temperatures = parse_temperatures(args.temperatures)
    orders = parse_orders(args.orders) if args.orders is not None else None
    if args.n < 2:
        raise UserError(f"-n must be at least 2 (Self-BLEU compares samples with each other), got {args.n}")
    if args.max_ref is not None and args.max_ref < 1:
        raise UserError(f"--max-ref must be at least 1, got {args.max_ref}")
    if args.self_bleu_samples is not None and args.self_bleu_samples < 2:
        raise UserError(f"--self-bleu-samples must be at least 2, got {args.self_bleu_samples}")

    given, paths = zip(*map(split_label, args.runs), strict=True)
    models = [load_model(path) for path in paths]
    _check_same_corpus(models, list(paths))
    labels = _labels(models, list(paths), list(given))
    orders = orders or default_orders(models)

    first = models[0]
    references = first.read_references(args.ref, limit=args.max_ref)
    if not references:
        raise UserError(f"{args.ref or paths[0]}: no reference sentences")
    source = args.ref if args.ref is not None else f"test split of {paths[0]}"
    coverage = None
    if args.ref is not None:  # the run's own test split is right by construction
        coverage = check_references(first, references, args.ref, n=args.n, seed=args.seed)

    fed_of, fed_info = _fed_axis(args, first)
    from ..runs.tracking import progress_bar

    with progress_bar(len(models) * len(temperatures), "sweep", "temperature") as bar:
        curves = {label: quality_diversity(model, references, temperatures, args.n, orders, seed=args.seed,
                                           self_bleu_samples=args.self_bleu_samples, fed_of=fed_of,
                                           progress=bar.update)
                  for label, model in zip(labels, models, strict=True)}
    k = next(iter(curves.values()))[0]["n_self_bleu"]
    gaps = gaps_to_baseline(curves, orders)
    result = {
        "runs": curves,
        "gap_to_first": gaps,
        "run_dirs": dict(zip(labels, paths, strict=True)),
        "corpus": first.corpus,
        "orders": orders,
        "temperatures": temperatures,
        "n": args.n,
        "self_bleu_samples": k,
        "seed": args.seed,
        "references": {"source": source, "n": len(references), "coverage": coverage},
    }
    if fed_info is not None:
        result["fed"] = fed_info
    summary = (f"{args.n} samples per temperature (seed {args.seed}) from each of {len(models)} run(s) of "
               f"{first.corpus}; BLEU against {len(references)} references ({source}), Self-BLEU on "
               f"{k} samples (nltk method1 smoothing). Better: higher BLEU, lower Self-BLEU.")
    if fed_info is not None:
        summary += (f" FED (lower is closer) of each temperature's {args.n} samples against {fed_info['n_ref']} "
                    f"reference sentences, encoder {fed_info['label']}.")
    written = _write_outputs(Path(args.out), result, format_table(curves, orders, markdown=True), summary,
                             format_gaps(gaps, labels[0], markdown=True)) if args.out else []
    if args.json:
        print(json.dumps(result))
        return 0
    print(summary)
    print(format_table(curves, orders), end="")
    print(format_gaps(gaps, labels[0]), end="")
    for path in written:
        print(f"wrote {path}")
    return 0


def register_sweep(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the ``eval`` sub-command group."""
    p = eval_subparsers.add_parser(
        "sweep", help="quality-diversity curves: BLEU vs Self-BLEU of text runs over a temperature sweep",
        description="Sample every run at each temperature and score the samples: BLEU-n against the "
                    "references (quality) and Self-BLEU-n among themselves (diversity). Compare a GAN with "
                    "the temperature-swept MLE curve, not at one point (Caccia et al., 'Language GANs falling "
                    "short'). All runs must share one corpus and vocabulary. The first run is the baseline "
                    "(give the MLE run first): every other point is also reported as its BLEU minus the first "
                    "run's curve at the same Self-BLEU.")
    p.add_argument("runs", nargs="+", metavar="[LABEL=]RUN_DIR",
                   help="text run directories (or checkpoints in them), each optionally labelled LABEL=PATH "
                        "(default label: the run's name)")
    p.add_argument("--temperatures", nargs="+", default=DEFAULT_TEMPERATURES, metavar="T",
                   help=f"temperatures >= 0, 0 = greedy, separated by commas or spaces (default "
                        f"{DEFAULT_TEMPERATURES})")
    p.add_argument("--ref", metavar="FILE",
                   help="reference sentences, one per line (default: the first run's test split); rejected "
                        "when under 50%% of their tokens are in the run's vocabulary")
    p.add_argument("-n", type=int, default=1000, help="samples per temperature and run (default 1000)")
    p.add_argument("--orders", nargs="+", metavar="N",
                   help="BLEU orders, e.g. 2,3 or 2 3 (default: the runs' own BLEU orders, else 2)")
    p.add_argument("--max-ref", type=int, metavar="N", help="use only the first N reference sentences")
    p.add_argument("--self-bleu-samples", type=int, metavar="N",
                   help="Self-BLEU on the first N samples only (leave-one-out cost grows as N^2)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every temperature and run")
    p.add_argument("--out", metavar="DIR", help="write sweep.json, sweep.md and sweep_bleu{n}.png here")
    p.add_argument("--encoder", metavar="RUN", help="also report FED against the references at every temperature, "
                                                    "with this word2vec or skipthought run")
    p.add_argument("--pooling", choices=["sif", "mean"], default="sif", help="word2vec --encoder pooling")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_sweep)
