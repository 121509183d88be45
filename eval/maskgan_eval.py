"""MaskGAN's measures for one text run, MaskMLE beside MaskGAN (and the MLE language model they start from).

    python eval/maskgan_eval.py RUN_DIR --lm MLE_CHECKPOINT [--masks contiguous prefix:6] [--seeds 0 1 2]
        [-n 1000] [--examples 10] [--sweep] --out eval/results/maskgan/NAME

For every model (``lm``: the MLE generator; ``maskmle``: ``RUN_DIR/generator_maskmle.safetensors``;
``maskgan``: ``RUN_DIR/generator.safetensors``) and every seed it measures:

- diversity: MaskGAN's % unique n-grams (n = 2, 3, 4) of ``-n`` unconditional samples at temperature 1
  (the in-filler with everything masked; the LM as it is), tokenized like BLEU (``data.eval_tokenizer``);
  the same for ``-n`` sentences of the test split, as the real-text reference;
- in-filling (the two in-fillers only), for every ``--masks`` entry: ``eval infill`` (the library call,
  :func:`seqgan_kit.infill.scoring.evaluate_infill`) on ``-n`` test
  sentences (masked perplexity; the MLE LM's perplexity at the same positions from the left context alone;
  token accuracy; in-fill BLEU-2/3/4), seed s choosing the rows, the masks and the fills.

It prints mean ± sd over the seeds and writes ``NAME.json`` (every number, every seed) and ``NAME_examples.md``
(``--examples`` fills of seed 0, the rows that seed's permutation puts first, MaskMLE's and MaskGAN's fills of
the same masked rows side by side). ``--sweep`` also draws the three models' quality–diversity curves with the
library's :func:`seqgan_kit.metrics.sweep.quality_diversity`, as ``seqgan-kit eval sweep`` does with its defaults
(temperatures 0.5–1.5, the runs' BLEU orders, the LM run's test split as references, sample seed 0): the curves
go into ``NAME.json``, one PNG per order into ``NAME_sweep/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from summarize_seeds import spread  # eval/ sibling: the scripts' one mean ± sd formatter

from seqgan_kit.data.corpus import load_lines
from seqgan_kit.infill.scoring import evaluate_infill, load_infiller
from seqgan_kit.metrics.infill import distinct_ngrams
from seqgan_kit.metrics.sweep import curve_bleu, default_orders, gaps_to_baseline, plot_sweep, quality_diversity
from seqgan_kit.models.masks import parse_mask
from seqgan_kit.runs.textmodel import TextModel

ORDERS = (2, 3, 4)
TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5)


def sweep(loaded: dict[str, TextModel], n: int, out: Path) -> dict:
    """Quality–diversity curves of every model in ``loaded`` (the first is the baseline), ``n`` samples per
    temperature, against the first run's test split; one PNG per BLEU order in ``out``."""
    first = next(iter(loaded.values()))
    references = first.read_references()
    orders = default_orders(loaded.values())
    curves = {name: quality_diversity(model, references, TEMPERATURES, n, orders, seed=0)
              for name, model in loaded.items()}
    out.mkdir(parents=True, exist_ok=True)
    for order in orders:
        plot_sweep(curves, order, out / f"sweep_bleu{order}.png")
    return {"runs": curves, "gap_to_first": gaps_to_baseline(curves, orders), "orders": orders,
            "temperatures": list(TEMPERATURES), "n": n, "seed": 0, "references": len(references)}


def diversity(model: TextModel, n: int, seed: int) -> dict[int, float]:
    texts = model.sample_text(n, temperature=1.0, seed=seed)
    return distinct_ngrams(model.eval_tokens(texts), ORDERS)


def real_diversity(model: TextModel, n: int, seed: int) -> dict[int, float]:
    import random

    lines = load_lines(model.data, seed=model.seed)[1]
    random.Random(seed).shuffle(lines)
    return distinct_ngrams(model.eval_tokens(lines[:n]), ORDERS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="print the tables of an existing NAME.json and stop")
    ap.add_argument("run", type=Path)
    ap.add_argument("--lm", type=Path, required=True, help="the MLE generator the run started from")
    ap.add_argument("--masks", nargs="+", default=["contiguous"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--examples", type=int, default=10)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--out", type=Path, required=True, help="output prefix, e.g. eval/results/maskgan/poetry")
    args = ap.parse_args()
    if args.report:
        result = json.loads(Path(f"{args.out}.json").read_text(encoding="utf-8"))
        for part in ("distinct", "infill"):  # JSON object keys are strings: back to the seeds
            for by_model in ([result[part]] if part == "distinct" else result[part].values()):
                for name, by_seed in by_model.items():  # distinct: {seed: {order: %}}
                    by_model[name] = {int(k): {int(n): x for n, x in v.items()} if part == "distinct" else v
                                      for k, v in by_seed.items()}
        report(result, args)
        return
    started = time.perf_counter()
    models = {"lm": args.lm, "maskmle": args.run / "generator_maskmle.safetensors",
              "maskgan": args.run / "generator.safetensors"}
    result: dict = {"run": str(args.run), "n": args.n, "seeds": args.seeds, "masks": args.masks,
                    "models": {k: str(v) for k, v in models.items()}, "distinct": {}, "infill": {}}
    loaded = {name: TextModel.load(path) for name, path in models.items()}
    result["distinct"]["test split"] = {s: real_diversity(loaded["lm"], args.n, s) for s in args.seeds}
    for name, model in loaded.items():
        result["distinct"][name] = {s: diversity(model, args.n, s) for s in args.seeds}
    for mask in args.masks:
        for name in ("maskmle", "maskgan"):
            model, settings = load_infiller(models[name])
            result["infill"].setdefault(mask, {})[name] = {
                s: {"run": str(models[name]), **evaluate_infill(
                    model, settings, parse_mask(mask), n=args.n, seed=s,
                    n_examples=args.examples if s == args.seeds[0] else 0)}
                for s in args.seeds}
    if args.sweep:
        result["sweep"] = sweep(loaded, args.n, Path(f"{args.out}_sweep"))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    report(result, args)


def report(result: dict, args: argparse.Namespace) -> None:
    seeds = args.seeds
    print(f"\n% unique n-grams of {args.n} unconditional samples (T = 1), mean ± sd over seeds {seeds}")
    print("| model | " + " | ".join(f"{n}-grams" for n in ORDERS) + " |")
    print("|---|" + "---:|" * len(ORDERS))
    for name, by_seed in result["distinct"].items():
        cells = [spread([by_seed[s][n] for s in seeds], 2) for n in ORDERS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for mask, by_model in result["infill"].items():
        print(f"\nin-filling {args.n} test sentences, mask {mask}, mean ± sd over seeds {seeds}")
        print("| model | masked perplexity | LM perplexity, same positions | token accuracy % | BLEU-2 | BLEU-3 | "
              "BLEU-4 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, by_seed in by_model.items():
            rows = [by_seed[s] for s in seeds]
            cells = [spread([r["masked_perplexity"] for r in rows], 2),
                     spread([r["lm_masked_perplexity"] for r in rows], 2),
                     spread([r["token_accuracy"] for r in rows], 2),
                     *(spread([r["bleu"][str(n)] for r in rows], 2) for n in ORDERS)]
            print(f"| {name} | " + " | ".join(cells) + " |")
    if "sweep" in result:
        report_sweep(result["sweep"], [str(p) for p in result["models"].values()])
    lines = [f"# In-fill examples: {result['run']}", "",
             f"Seed {seeds[0]}: the first {args.examples} scored test rows of that seed's permutation (not chosen by "
             f"hand); MaskMLE and MaskGAN fill the same masked rows.", ""]
    for mask, by_model in result["infill"].items():
        lines += [f"## mask {mask}", ""]
        mle_ex = by_model["maskmle"][seeds[0]]["examples"]
        gan_ex = by_model["maskgan"][seeds[0]]["examples"]
        for i, (a, b) in enumerate(zip(mle_ex, gan_ex, strict=True), 1):
            lines += [f"{i}. context: `{a['context']}`", f"   - original: `{a['original']}`",
                      f"   - MaskMLE: `{a['fill']}`", f"   - MaskGAN: `{b['fill']}`", ""]
    Path(f"{args.out}_examples.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"\nwrote {args.out}.json and {args.out}_examples.md in {result['wall_s']:.0f} s")


def report_sweep(sweep: dict, paths: list[str]) -> None:
    """Each in-filler point against the MLE LM's temperature curve: BLEU minus the curve's BLEU at the same
    Self-BLEU (positive: above the MLE curve)."""
    order = str(sweep["orders"][0])
    runs = list(sweep["runs"].values())
    curve = runs[0]
    print(f"\nquality-diversity, order {order}: BLEU - (MLE curve's BLEU at the same Self-BLEU)")
    print("| model | T | BLEU | Self-BLEU | gap to the MLE curve |")
    print("|---|---:|---:|---:|---:|")
    for name, points in zip(("maskmle", "maskgan"), runs[1:], strict=True):
        for p in points:
            ref = curve_bleu(curve, p["self_bleu"][order], int(order))
            gap = "outside the curve" if ref is None else f"{p['bleu'][order] - ref:+.4f}"
            print(f"| {name} | {p['temperature']:g} | {p['bleu'][order]:.4f} | {p['self_bleu'][order]:.4f} | {gap} |")


if __name__ == "__main__":
    main()
