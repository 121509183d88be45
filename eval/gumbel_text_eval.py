"""BLEU of text generators under RelGAN's protocol and under the toolkit's full protocol, side by side.

    python eval/gumbel_text_eval.py [LABEL=]CHECKPOINT [[LABEL=]CHECKPOINT ...] [--ref FILE] [--seeds 0 1 2]
        [-n 9984] [--relgan-n 100] --out eval/results/gumbel/coco_bleu

For every checkpoint (a run directory or a checkpoint file in one) and every seed, ``-n`` samples are drawn at
temperature 1 and scored, tokenized like the run's BLEU (``data.eval_tokenizer``; treebank for COCO):

- RelGAN's protocol (Nie et al. 2019, Table 2): BLEU-2..5 of the **first** ``--relgan-n`` samples, each against
  the whole reference file;
- the full protocol: BLEU-2..5 of all ``-n`` samples against the whole reference file, and Self-BLEU-2..5 of
  all ``-n`` samples (leave one out, Texygen's full-set definition);
- NLL_test: the checkpoint's mean per-token NLL on the run's held-out test split, padding excluded (not RelGAN's
  NLL_gen, which is the NLL of the *training* data with PAD positions counted: the runs' ``nll_gen``).

Both protocols score the same samples, so they differ only in how many are kept. The first-100 figure is a
mean over 100 sentences, so the spread over sampling seeds is printed beside it. Writes ``OUT.json`` (every
number, every seed) and prints a markdown table of mean ± sd over the seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from summarize_seeds import spread  # eval/ sibling: the scripts' one mean ± sd formatter

from seqgan_kit.cli.sweep import split_label
from seqgan_kit.metrics.bleu import BleuReferences, self_bleu
from seqgan_kit.runs.textmodel import TextModel

ORDERS = (2, 3, 4, 5)


def measure(label: str, path: str, model: TextModel, refs: BleuReferences, seeds: list[int], n: int,
            relgan_n: int) -> dict:
    model.generator.eval()
    result = {"label": label, "checkpoint": str(path), "nll_test": model.nll_test(),
              "seeds": {}}
    for seed in seeds:
        t0 = time.perf_counter()
        hyps = model.eval_tokens(model.sample_text(n, temperature=1.0, seed=seed))
        row = {
            "relgan_bleu": {str(k): v for k, v in refs.score(hyps[:relgan_n], ORDERS).items()},
            "full_bleu": {str(k): v for k, v in refs.score(hyps, ORDERS).items()},
            "self_bleu": {str(k): v for k, v in self_bleu(hyps, orders=ORDERS).items()},
            "mean_len": statistics.fmean(len(h) for h in hyps),
        }
        row["seconds"] = round(time.perf_counter() - t0, 1)
        result["seeds"][str(seed)] = row
        print(f"{label} seed {seed}: RelGAN-protocol BLEU-2 {row['relgan_bleu']['2']:.3f}, full BLEU-2 "
              f"{row['full_bleu']['2']:.3f}, Self-BLEU-2 {row['self_bleu']['2']:.3f} ({row['seconds']} s)",
              flush=True)
    return result


def table(results: list[dict]) -> str:
    head = ("| model | NLL_test (held-out) | RelGAN protocol BLEU-2/3/4/5 (first 100) | full BLEU-2/3/4/5 (all) | "
            "Self-BLEU-2/3/4/5 (all) | mean length |")
    lines = [head, "|---|---:|---|---|---|---:|"]
    for r in results:
        rows = list(r["seeds"].values())

        cells = [" / ".join(spread([row[key][str(k)] for row in rows]) for k in ORDERS)
                 for key in ("relgan_bleu", "full_bleu", "self_bleu")]
        lines.append(f"| {r['label']} | {r['nll_test']:.3f} | {' | '.join(cells)} | "
                     f"{spread([row['mean_len'] for row in rows], 2)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="[LABEL=]CHECKPOINT (a run directory or a checkpoint in one)")
    ap.add_argument("--ref", type=Path, default=None, help="reference file (default: the first run's test split)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("-n", type=int, default=9984)
    ap.add_argument("--relgan-n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="output prefix: writes OUT.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = [split_label(m) for m in args.models]  # (label or None, path)
    models = [TextModel.load(path) for _, path in pairs]
    refs = BleuReferences(models[0].read_references(args.ref), max(ORDERS))
    results = [measure(label or path, path, model, refs, args.seeds, args.n, args.relgan_n)
               for (label, path), model in zip(pairs, models, strict=True)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"ref": str(args.ref or "test split"), "n": args.n, "relgan_n": args.relgan_n, "seeds": args.seeds,
            "temperature": 1.0}
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
