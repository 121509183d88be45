"""Checks of the sentence encoders and the Fréchet embedding distance (FED); writes eval/results/encoders_*.

    SEQGAN_KIT_DATA=../shared/corpora OMP_NUM_THREADS=1 python eval/encoders_checks.py --runs RUNS_DIR [--json]

RUNS_DIR holds finished encoder runs named ``{obama,poetry}_{word2vec,skipthought}`` (from the recipes of the same
names; a missing skipthought run is skipped). Measured:

1. FED against a direct scipy computation (``scipy.linalg.sqrtm``), on random data and on real embeddings;
   FED(X, X).
2. FED as test sentences are corrupted at rates 0, 0.1, 0.2, 0.4, 0.8 by word shuffling (that share of each
   sentence's word positions permuted among themselves) and by random replacement (that share of the words
   replaced by words drawn uniformly from the training words seen at least 5 times), against 5,000 training
   sentences; words are whitespace words (Obama) or characters (poetry). Table + PNG.
3. The bias of FED at small n: n = 500, 1,000, 2,000, 5,000 training sentences (3 random draws each, mean and
   sd) against 5,000 other training sentences of the same corpus (the true FED is ~0).
4. Time to embed 10,000 sentences; FED on 10,000 x d for each encoder's d and for d = 2,400.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqgan_kit.encoders.loading import load_encoder  # noqa: E402
from seqgan_kit.metrics.embedding import fed  # noqa: E402

RATES = (0.0, 0.1, 0.2, 0.4, 0.8)
SIZES = (500, 1000, 2000, 5000)
CORPORA = {"obama": "obama_speech", "poetry": "poetry_quatrain5"}


def scipy_fed(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def words_of(text: str, corpus: str) -> list[str]:
    return text.split() if corpus == "obama" else list("".join(text.split()))


def join(words: list[str], corpus: str) -> str:
    return " ".join(words)


def shuffle_words(words, rate, rng):
    k = int(round(rate * len(words)))
    if k < 2:
        return list(words)
    pos = rng.sample(range(len(words)), k)
    moved = pos[:]
    rng.shuffle(moved)
    out = list(words)
    for src, dst in zip(pos, moved, strict=True):
        out[dst] = words[src]
    return out


def replace_words(words, rate, rng, pool):
    k = int(round(rate * len(words)))
    out = list(words)
    for p in rng.sample(range(len(words)), k):
        out[p] = rng.choice(pool)
    return out


def encoders_of(runs: Path, name: str, kinds=("word2vec", "skipthought")):
    out = {}
    w2v = runs / f"{name}_word2vec"
    if "word2vec" in kinds and (w2v / "word2vec.safetensors").is_file():
        out["word2vec-mean"] = load_encoder(w2v, pooling="mean")
        out["word2vec-sif"] = load_encoder(w2v, pooling="sif")
    st = runs / f"{name}_skipthought"
    if "skipthought" in kinds and (st / "skipthought.safetensors").is_file():
        out["skipthought"] = load_encoder(st)
    return out


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results")
    parser.add_argument("--only", choices=list(CORPORA), nargs="*")
    parser.add_argument("--kinds", nargs="+", default=["word2vec", "skipthought"], choices=["word2vec", "skipthought"])
    parser.add_argument("--merge", action="store_true", help="add to the encoders of an existing encoders_checks.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                "torch": torch.__version__, "threads": torch.get_num_threads()}}

    # 1. agreement with scipy and FED(X, X) on random data
    rng = np.random.default_rng(0)
    agree = []
    for d in (16, 100, 512):
        x = rng.normal(size=(3000, d))
        y = rng.normal(size=(3000, d)) @ rng.normal(size=(d, d)) * 0.1 + 0.2
        ours, s = fed(x, y), scipy_fed(x, y)
        agree.append({"d": d, "ours": ours, "scipy": s, "abs_diff": abs(ours - s), "fed_xx": fed(x, x)})
    report["scipy_agreement_random"] = agree
    print(json.dumps(agree, indent=1), flush=True)

    # 4b. FED time on 10,000 x d
    fed_times = []
    for d in (100, 512, 2400):
        x = rng.normal(size=(10000, d))
        y = rng.normal(size=(10000, d)) + 0.1
        _, t = timed(lambda x=x, y=y: fed(x, y))
        fed_times.append({"n": 10000, "d": d, "seconds": round(t, 3)})
        print(fed_times[-1], flush=True)
    report["fed_time"] = fed_times

    report["corpora"] = {}
    for name in CORPORA:
        if args.only and name not in args.only:
            continue
        encs = encoders_of(args.runs, name, args.kinds)
        if not encs:
            continue
        any_enc = next(iter(encs.values()))
        train = any_enc.training_sentences()
        from seqgan_kit.data.corpus import load_lines

        test = load_lines(any_enc.cfg.data, any_enc.cfg.seed)[1]
        r = random.Random(1609)
        order = list(range(len(train)))
        r.shuffle(order)
        ref = [train[i] for i in order[:5000]]
        rest = [train[i] for i in order[5000:]]
        counts = Counter(w for t in train for w in words_of(t, name))
        pool = sorted(w for w, c in counts.items() if c >= 5)
        entry: dict = {"n_ref": len(ref), "n_test": len(test), "encoders": {}}
        for label, enc in encs.items():
            e: dict = {"describe": enc.describe()}
            ref_x = enc.embed(ref)
            # real-embedding scipy agreement and FED(X, X)
            test_x = enc.embed(test)
            e["scipy_abs_diff"] = abs(fed(ref_x, test_x) - scipy_fed(ref_x, test_x))
            e["fed_xx"] = fed(ref_x, ref_x)
            big = (rest * 2)[:10000]
            _, t_embed = timed(lambda enc=enc, big=big: enc.embed(big))
            e["embed_10k_s"] = round(t_embed, 2)
            corr = {}
            for kind in ("shuffle", "replace"):
                row = []
                for rate in RATES:
                    cr = random.Random(f"{kind}{rate}")
                    texts = []
                    for t in test:
                        w = words_of(t, name)
                        w = shuffle_words(w, rate, cr) if kind == "shuffle" else replace_words(w, rate, cr, pool)
                        texts.append(join(w, name))
                    row.append(fed(ref_x, enc.embed(texts)))
                corr[kind] = row
            e["corruption"] = corr
            bias = []
            for n in SIZES:
                vals = []
                for rep in range(3 if n < 5000 else 1):
                    sample = random.Random(f"bias{n}{rep}").sample(rest, min(n, len(rest)))
                    if len(sample) <= enc.dim:
                        vals = None
                        break
                    vals.append(fed(ref_x, enc.embed(sample)))
                bias.append({"n": n, "mean": None if vals is None else float(np.mean(vals)),
                             "sd": None if vals is None else float(np.std(vals))})
            e["bias"] = bias
            entry["encoders"][label] = e
            print(name, label, json.dumps({k: v for k, v in e.items() if k != "describe"}), flush=True)
        report["corpora"][name] = entry

    args.out.mkdir(parents=True, exist_ok=True)
    old_path = args.out / "encoders_checks.json"
    if args.merge and old_path.is_file():
        old = json.loads(old_path.read_text())
        for name, entry in report["corpora"].items():
            old.setdefault("corpora", {}).setdefault(name, entry)["encoders"].update(entry["encoders"])
        old["scipy_agreement_random"], old["fed_time"] = report["scipy_agreement_random"], report["fed_time"]
        report = old
    (args.out / "encoders_checks.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out / "encoders_fed_corruption.png")
    print(markdown(report))


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(report["corpora"])
    fig, axes = plt.subplots(len(corpora), 2, figsize=(10, 3.6 * len(corpora)), squeeze=False)
    for i, name in enumerate(corpora):
        for j, kind in enumerate(("shuffle", "replace")):
            ax = axes[i][j]
            for label, e in report["corpora"][name]["encoders"].items():
                vals = np.array(e["corruption"][kind])
                ax.plot(RATES, vals / vals[-1] if vals[-1] > 0 else vals, marker="o", label=label)
            ax.set_title(f"{name}: word {'shuffling' if kind == 'shuffle' else 'replacement'}", fontsize=10)
            ax.set_xlabel("corruption rate")
            ax.set_ylabel("FED / FED at rate 0.8")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(report) -> str:
    out = []
    for name, entry in report["corpora"].items():
        out.append(f"\n### {name} (reference: {entry['n_ref']} training sentences; corrupted: the "
                   f"{entry['n_test']} test sentences)\n")
        out.append("| encoder | corruption | " + " | ".join(f"{r:g}" for r in RATES) + " |")
        out.append("| --- | --- | " + " | ".join("---:" for _ in RATES) + " |")
        for label, e in entry["encoders"].items():
            for kind in ("shuffle", "replace"):
                out.append(f"| {label} | {kind} | " + " | ".join(f"{v:.4g}" for v in e["corruption"][kind]) + " |")
        out.append("\n| encoder | " + " | ".join(f"n={n}" for n in SIZES) + " | scipy abs diff | FED(X,X) | "
                   "embed 10k (s) |")
        out.append("| --- | " + " | ".join("---:" for _ in SIZES) + " | ---: | ---: | ---: |")
        for label, e in entry["encoders"].items():
            cells = [("-" if b["mean"] is None else f"{b['mean']:.4g} ± {b['sd']:.2g}") for b in e["bias"]]
            out.append(f"| {label} | " + " | ".join(cells) + f" | {e['scipy_abs_diff']:.2e} | {e['fed_xx']:.1e} | "
                       f"{e['embed_10k_s']} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
