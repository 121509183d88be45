"""Time BLEU-2..5 and leave-one-out Self-BLEU-2..5 on the Texygen COCO protocol: ours vs nltk vs others.

    python eval/bench_bleu.py [--model seq] [--nltk-subset 20] [--repeats 3] [--json]
    python eval/bench_bleu.py --texygen-table    # all six models vs the README's recomputed table

Protocol (../shared/texygen_coco/README.md): the 9,984 sentences of instances/<model>.txt, each scored against
all 10,000 lines of test_coco.txt (BLEU) and against the other 9,983 samples (Self-BLEU), treebank tokens,
nltk sentence_bleu with method1 smoothing, mean over sentences. Every method gets the same token lists;
tokenization is timed separately.

- ours: seqgan_kit.metrics.bleu, all four orders in one pass (index + scoring; median of --repeats runs after
  a first call that loads or compiles the numba kernels, timed on its own).
- nltk: the usual loop, one sentence_bleu call per hypothesis and order, on the first --nltk-subset
  hypotheses, timed and extrapolated linearly to 9,984; per-sentence values are compared with ours there.
- fast-bleu (C++, optional): BLEU / SelfBLEU on the full set when the package is importable.
- sacrebleu: corpus BLEU-4, hypothesis line i vs reference line i (a different quantity, for scale only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "texygen_coco"
ORDERS = (2, 3, 4, 5)


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def median_time(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        value, dt = timed(fn)
        times.append(dt)
    return value, statistics.median(times)


def nltk_subset(refs_for, hyps, subset: int):
    """nltk per-order loop on the first ``subset`` hypotheses: ({n: per-sentence scores}, seconds)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    method1 = SmoothingFunction().method1
    t0 = time.perf_counter()
    scores = {n: [sentence_bleu(refs_for(i), hyps[i], weights=(1 / n,) * n, smoothing_function=method1)
                  for i in range(subset)] for n in ORDERS}
    return scores, time.perf_counter() - t0


def fast_bleu_scores(refs, hyps):
    """fast-bleu's BLEU and SelfBLEU on the full set, or the reason it is unavailable."""
    try:
        import fast_bleu
    except ImportError as exc:
        return {"error": f"not importable ({exc})"}
    weights = {n: (1 / n,) * n for n in ORDERS}
    bleu, t_bleu = timed(lambda: fast_bleu.BLEU(refs, weights).get_score(hyps))
    self_bleu, t_self = timed(lambda: fast_bleu.SelfBLEU(hyps, weights).get_score())
    return {"bleu": {n: np.asarray(v) for n, v in bleu.items()}, "self_bleu": {n: np.asarray(v)
            for n, v in self_bleu.items()}, "time_bleu": t_bleu, "time_self_bleu": t_self}


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def run(args: argparse.Namespace) -> dict:
    from seqgan_kit.metrics.bleu import BleuReferences, bleu, self_bleu
    from seqgan_kit.metrics.corpus_bleu import corpus_bleu
    from seqgan_kit.metrics.text import read_sentences

    hyp_path, ref_path = DATA / "instances" / f"{args.model}.txt", DATA / "test_coco.txt"
    (hyps, refs), t_tok = timed(lambda: (read_sentences(hyp_path, "treebank", allow_empty=True),
                                         read_sentences(ref_path, "treebank")))
    n_hyp, k = len(hyps), args.nltk_subset

    _, t_first = timed(lambda: (bleu(hyps[:10], refs[:10], orders=ORDERS),
                                BleuReferences(refs[:10], 5).score(hyps, ORDERS),
                                self_bleu(hyps, orders=ORDERS)))
    ours_bleu, t_bleu = median_time(lambda: bleu(hyps, refs, orders=ORDERS, per_sentence=True), args.repeats)
    (index, t_index) = timed(lambda: BleuReferences(refs, max(ORDERS)))
    ours_self, t_self = median_time(lambda: self_bleu(hyps, orders=ORDERS, per_sentence=True), args.repeats)

    nltk_bleu, t_nltk_bleu = nltk_subset(lambda i: refs, hyps, k)
    nltk_self, t_nltk_self = nltk_subset(lambda i: hyps[:i] + hyps[i + 1:], hyps, k)
    scale = n_hyp / k

    def agreement(ours, theirs):
        return {"max_abs_diff": max(max_abs(ours[n][:len(theirs[n])], theirs[n]) for n in ORDERS),
                "bit_identical": all(ours[n][:len(theirs[n])].tolist() == list(map(float, theirs[n]))
                                     for n in ORDERS)}

    fast = fast_bleu_scores(refs, hyps) if not args.no_fast_bleu else {"error": "skipped (--no-fast-bleu)"}
    corpus, t_corpus = timed(lambda: corpus_bleu(hyps, refs[:n_hyp]))

    result = {
        "protocol": f"Texygen COCO, {args.model}.txt ({n_hyp} hyps) vs test_coco.txt ({len(refs)} refs), "
                    "treebank tokens, BLEU-2..5 and leave-one-out Self-BLEU-2..5",
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores (shared), "
                   f"Python {platform.python_version()}",
        "tokenize_s": t_tok,
        "ours": {"bleu_s": t_bleu, "reference_index_s": t_index, "self_bleu_s": t_self,
                 "first_call_s": t_first, "bleu": {n: float(np.mean(ours_bleu[n])) for n in ORDERS},
                 "self_bleu": {n: float(np.mean(ours_self[n])) for n in ORDERS}},
        "nltk": {"subset": k, "bleu_subset_s": t_nltk_bleu, "self_bleu_subset_s": t_nltk_self,
                 "bleu_s_extrapolated": t_nltk_bleu * scale, "self_bleu_s_extrapolated": t_nltk_self * scale,
                 "per_hyp_per_order_s": (t_nltk_bleu + t_nltk_self) / (2 * k * len(ORDERS)),
                 "bleu_vs_ours": agreement(ours_bleu, nltk_bleu),
                 "self_bleu_vs_ours": agreement(ours_self, nltk_self)},
        "sacrebleu_corpus": {"score": corpus.score, "signature": corpus.signature, "s": t_corpus},
    }
    if "error" in fast:
        result["fast_bleu"] = {"error": fast["error"]}
    else:
        result["fast_bleu"] = {
            "bleu_s": fast["time_bleu"], "self_bleu_s": fast["time_self_bleu"],
            "bleu": {n: float(np.mean(fast["bleu"][n])) for n in ORDERS},
            "self_bleu": {n: float(np.mean(fast["self_bleu"][n])) for n in ORDERS},
            "bleu_max_abs_diff_vs_ours": max(max_abs(fast["bleu"][n], ours_bleu[n]) for n in ORDERS),
            "self_bleu_max_abs_diff_vs_ours": max(max_abs(fast["self_bleu"][n], ours_self[n])
                                                  for n in ORDERS),
            "bleu_sentences_differing_1e-9": {n: int(np.sum(np.abs(fast["bleu"][n] - ours_bleu[n]) > 1e-9))
                                              for n in ORDERS},
            "self_bleu_sentences_differing_1e-9": {
                n: int(np.sum(np.abs(fast["self_bleu"][n] - ours_self[n]) > 1e-9)) for n in ORDERS},
        }
    result["ratio_bleu"] = result["nltk"]["bleu_s_extrapolated"] / t_bleu
    result["ratio_self_bleu"] = result["nltk"]["self_bleu_s_extrapolated"] / t_self
    result["ratio"] = ((result["nltk"]["bleu_s_extrapolated"] + result["nltk"]["self_bleu_s_extrapolated"])
                       / (t_bleu + t_self))
    return result


def print_table(r: dict) -> None:
    nl, ours, fast = r["nltk"], r["ours"], r["fast_bleu"]
    print(f"# {r['protocol']}\n# {r['machine']}\n")
    print("| method | BLEU-2..5 (s) | Self-BLEU-2..5 (s) | speed-up vs nltk | agreement with nltk |")
    print("|---|---|---|---|---|")
    for agree in (nl["bleu_vs_ours"], nl["self_bleu_vs_ours"]):
        diff = f"max abs diff {agree['max_abs_diff']:.1e}"
        agree["text"] = "bit-identical" if agree["bit_identical"] else diff
    print(f"| ours (numba; all orders in one pass) | {ours['bleu_s']:.3f} | {ours['self_bleu_s']:.3f} | "
          f"{r['ratio_bleu']:,.0f}x / {r['ratio_self_bleu']:,.0f}x | per sentence on the nltk subset: BLEU "
          f"{nl['bleu_vs_ours']['text']}, Self-BLEU {nl['self_bleu_vs_ours']['text']} |")
    print(f"| nltk sentence_bleu loop (measured on {nl['subset']} hyps, extrapolated to all) | "
          f"{nl['bleu_s_extrapolated']:,.0f} | {nl['self_bleu_s_extrapolated']:,.0f} | 1x | reference "
          f"({nl['per_hyp_per_order_s']:.3f} s per hypothesis per order) |")
    if "error" in fast:
        print(f"| fast-bleu | {fast['error']} | | | |")
    else:
        print(f"| fast-bleu (C++) | {fast['bleu_s']:.2f} | {fast['self_bleu_s']:.2f} | "
              f"{nl['bleu_s_extrapolated'] / fast['bleu_s']:,.0f}x / "
              f"{nl['self_bleu_s_extrapolated'] / fast['self_bleu_s']:,.0f}x | vs ours, all sentences: "
              f"max abs diff BLEU {fast['bleu_max_abs_diff_vs_ours']:.1e}, "
              f"Self-BLEU {fast['self_bleu_max_abs_diff_vs_ours']:.1e} |")
    sb = r["sacrebleu_corpus"]
    print(f"| sacrebleu corpus BLEU-4 (line i vs line i; a different quantity) | {sb['s']:.2f} | - | - | "
          f"score {sb['score']:.2f} (0-100 scale), signature below |")
    print(f"\nsacrebleu signature: {sb['signature']}")
    print(f"ours, first call (loads or compiles the numba kernels): {ours['first_call_s']:.2f} s; "
          f"reference index alone: {ours['reference_index_s']:.3f} s; treebank tokenization of both files "
          f"(not in any time above): {r['tokenize_s']:.2f} s")
    print("ours   BLEU-2..5:", " ".join(f"{v:.4f}" for v in ours["bleu"].values()),
          "  Self-BLEU-2..5:", " ".join(f"{v:.4f}" for v in ours["self_bleu"].values()))
    if "error" not in fast:
        print("fast-bleu BLEU-2..5:", " ".join(f"{v:.4f}" for v in fast["bleu"].values()),
              "  Self-BLEU-2..5:", " ".join(f"{v:.4f}" for v in fast["self_bleu"].values()))
        print("fast-bleu sentences differing from ours by > 1e-9 per order: BLEU",
              fast["bleu_sentences_differing_1e-9"], "Self-BLEU", fast["self_bleu_sentences_differing_1e-9"])


MODELS = {"SeqGAN": "seq", "MaliGAN": "maligan", "RankGAN": "rank", "LeakGAN": "leakgan",
          "TextGAN": "textgan", "MLE": "mle"}


def readme_table() -> dict[str, list[list[float]]]:
    """The README's recomputed columns: model -> [test BLEU-2..5, train BLEU-2..5, Self-BLEU-2..5]."""
    table = {}
    for line in (DATA / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in MODELS:
            table[cells[0]] = [[float(v) for v in cells[i].split()] for i in (1, 3, 5)]
    return table


def texygen_table() -> None:
    """Recompute the README's table for all six models (markdown, with the deviation from the README)."""
    from seqgan_kit.metrics.bleu import BleuReferences, self_bleu
    from seqgan_kit.metrics.text import read_sentences

    def tokens(path):
        return read_sentences(path, "treebank", allow_empty=True)

    t0 = time.perf_counter()
    test = BleuReferences(tokens(DATA / "test_coco.txt"), max(ORDERS))
    train = BleuReferences(tokens(DATA / "image_coco.txt"), max(ORDERS))
    expected = readme_table()
    worst = 0.0
    print("| model | test BLEU-2/3/4/5 | README | train BLEU-2/3/4/5 | README | Self-BLEU-2/3/4/5 | README | "
          "max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name, stem in MODELS.items():
        samples = tokens(DATA / "instances" / f"{stem}.txt")
        ours = [test.score(samples, ORDERS), train.score(samples, ORDERS), self_bleu(samples, orders=ORDERS)]
        ours = [[table[n] for n in ORDERS] for table in ours]
        diff = max(abs(a - b) for mine, theirs in zip(ours, expected[name], strict=True)
                   for a, b in zip(mine, theirs, strict=True))
        worst = max(worst, diff)
        cells = []
        for mine, theirs in zip(ours, expected[name], strict=True):
            cells += [" ".join(f"{v:.5f}" for v in mine), " ".join(f"{v:.4f}" for v in theirs)]
        print(f"| {name} | {' | '.join(cells)} | {diff:.1e} |")
    print(f"\nmax abs difference over all 72 values: {worst:.2e}; total time incl. tokenization "
          f"{time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="seq", help="instances/<model>.txt (default seq)")
    parser.add_argument("--nltk-subset", type=int, default=20, help="hypotheses timed with nltk (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per timing (median)")
    parser.add_argument("--no-fast-bleu", action="store_true", help="skip fast-bleu even if installed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--texygen-table", action="store_true",
                        help="instead: recompute the README's table for all six models and compare")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"bench_bleu: needs {DATA}", file=sys.stderr)
        return 2
    if args.texygen_table:
        texygen_table()
        return 0
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
