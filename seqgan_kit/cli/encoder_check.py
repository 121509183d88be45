"""``seqgan-kit eval encoder``: the encoder check (:mod:`seqgan_kit.encoders.check`), optionally beside a word2vec
baseline on the same texts.

::

    seqgan-kit eval encoder ENCODER_RUN [--split test|train] [--baseline W2V_RUN] [-n 1000] [--triples 1000]
                            [-k 10] [--seed 0] [--distractors random|same-position] [--shuffle-rate 0.5]
                            [--fed-n 5000] [--no-fed] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import UserError


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _cmd_check(args: argparse.Namespace) -> int:
    from ..encoders.check import CheckSettings, check_encoder, prepare_check
    from ..encoders.loading import load_encoder

    settings = CheckSettings(split=args.split, n=args.n, triples=args.triples, k=args.k, seed=args.seed,
                             shuffle_rate=args.shuffle_rate, fed_n=args.fed_n, fed=not args.no_fed,
                             distractors=args.distractors)
    settings.validate()
    encoder = load_encoder(args.run, pooling=args.pooling)
    encoders = [encoder]
    if args.baseline:
        base = load_encoder(args.baseline, pooling="sif")
        if base.kind != "word2vec":
            raise UserError(f"--baseline needs a word2vec run, {args.baseline} is a {base.kind} run")
        if base.corpus != encoder.corpus:
            raise UserError(f"--baseline {args.baseline} is a run of corpus {base.corpus!r}, the encoder "
                            f"{args.run} of corpus {encoder.corpus!r}: compare on the same corpus")
        encoders.append(base)
    data = prepare_check(encoder, settings)
    results = [check_encoder(e, data, settings) for e in encoders]
    out = {**data.info, "settings": vars(settings), "results": results}
    if args.json:
        print(json.dumps(out))
        return 0
    names = [f"{r['encoder']['kind']}" + (f"-{r['encoder']['pooling']}" if "pooling" in r["encoder"] else "")
             for r in results]
    first = results[0]
    lines = [f"encoder check, corpus {data.info['corpus']}, {settings.split} split (seed {settings.seed})",
             *[f"  {name}: {r['encoder']['run']} ({r['encoder']['dim']}-d)" for name, r in zip(names, results,
                                                                                                  strict=True)],
             f"  {'':44}" + "".join(f"{name:>16}" for name in names)]

    def row(label: str, values: list[Any]) -> None:
        lines.append(f"  {label:44}" + "".join(f"{_fmt(v):>16}" for v in values))

    row(f"mean pairwise cosine ({first['n']} sentences)", [r["mean_pairwise_cosine"] for r in results])
    row("variance share of the top component", [r["top_pc_share"] for r in results])
    ret = first["retrieval"]
    row(f"next-unit top-1 of {ret['k']} (chance {ret['chance']:.2f}; {ret['n_triples']} triples)",
        [r["retrieval"]["top1"] for r in results])
    row("next-unit mean reciprocal rank", [r["retrieval"]["mrr"] for r in results])
    if settings.fed:
        fs = [r["fed_shuffle"] for r in results]
        label = f"FED ratio, {settings.shuffle_rate:.0%} words shuffled / real"
        row(label, [f.get("ratio") for f in fs])
        row("  FED real (held-out vs training)", [f.get("fed_real") for f in fs])
        lines += [f"  ({name}: FED skipped: {f['skipped']})" for name, f in zip(names, fs, strict=True)
                  if "skipped" in f]
    lines.append(f"  distractors: {ret['distractors']}, seed {ret['seed']}")
    print("\n".join(lines))
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval encoder``."""
    p = eval_subparsers.add_parser(
        "encoder", help="check a sentence encoder: collapse, next-unit retrieval, word-order sensitivity",
        description="On held-out text of the encoder's corpus: mean pairwise cosine and the top principal "
                    "component's variance share of N sentence vectors; next-unit retrieval (the true next "
                    "sentence/clause ranked first among K candidates by cosine); the FED ratio of word-shuffled "
                    "to real held-out text against training text. --baseline adds a word2vec-SIF encoder on the "
                    "same texts.")
    p.add_argument("run", metavar="ENCODER_RUN", help="a skipthought or word2vec run directory")
    p.add_argument("--baseline", metavar="W2V_RUN", help="a word2vec run of the same corpus, scored with SIF "
                                                         "pooling on the same texts")
    p.add_argument("--split", default="test", help="held-out text: test (default) or train (the corpora have no "
                                                   "validation split)")
    p.add_argument("-n", type=int, default=1000, help="sentences for the cosine and the component (default 1000)")
    p.add_argument("--triples", type=int, default=1000, help="held-out triples scored (default 1000)")
    p.add_argument("-k", type=int, default=10, help="candidates per triple, the true one included (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    p.add_argument("--distractors", default="random", help="random (any unit of the split, default) or "
                                                            "same-position (units at the true next unit's "
                                                            "position in their line)")
    p.add_argument("--shuffle-rate", type=float, default=0.5, help="share of each sentence's words shuffled for "
                                                                   "the FED ratio (default 0.5)")
    p.add_argument("--fed-n", type=int, default=5000, help="training sentences of FED's reference (default 5000)")
    p.add_argument("--no-fed", action="store_true", help="skip the FED ratio")
    p.add_argument("--pooling", choices=["sif", "mean"], default="sif", help="when ENCODER_RUN is word2vec")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_check)
