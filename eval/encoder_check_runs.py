"""The encoder check (``seqgan-kit eval encoder``) on Skip-Thought runs, with and without centring, beside
word2vec-SIF on the same texts; writes one JSON record per (run, centring).

    SEQGAN_KIT_DATA=/work/shared/corpora OMP_NUM_THREADS=1 python eval/encoder_check_runs.py \
        --baseline W2V_RUN --runs ST_RUN [ST_RUN ...] --out eval/results/encoders_check_CORPUS.json

Centring is toggled on the same weights: a run that stored ``center`` is also checked without it, and a run
that did not (``skipthought.center = false``) is also checked with the mean vector computed exactly as training
computes it (:func:`seqgan_kit.encoders.skipthought.mean_vector` over the run's training units). So the effect
of centring and the effect of training (conditioning) are measured apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqgan_kit.data.corpus import encode_examples, load_lines  # noqa: E402
from seqgan_kit.encoders.check import CheckSettings, check_encoder, prepare_check  # noqa: E402
from seqgan_kit.encoders.loading import load_encoder  # noqa: E402
from seqgan_kit.encoders.neighbours import triples_of  # noqa: E402
from seqgan_kit.encoders.skipthought import mean_vector  # noqa: E402
from seqgan_kit.runs.rundir import RunDir  # noqa: E402
from seqgan_kit.train.skipthought import CENTER_UNITS  # noqa: E402


def training_center(encoder) -> torch.Tensor:
    """The mean vector training would have stored for this run (same units, same function)."""
    data = encoder.cfg.data
    lines = load_lines(dataclasses.replace(data, segment="line", max_train=0), encoder.cfg.seed)[0]
    if data.lowercase:
        lines = [line.lower() for line in lines]
    units, _ = triples_of(lines, data.neighbours)
    rows, _ = encode_examples([encoder.tokenize(u) for u in units], encoder.vocab, data.max_tokens)  # [U, T]
    return mean_vector(encoder.model, rows, CENTER_UNITS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--baseline", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-fed", action="store_true")
    p.add_argument("--distractors", default="random", choices=["random", "same-position"])
    args = p.parse_args()
    torch.set_num_threads(1)
    settings = CheckSettings(fed=not args.no_fed, distractors=args.distractors)
    base = load_encoder(args.baseline, pooling="sif")
    data = prepare_check(base, settings)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    report = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "load_average": list(__import__("os").getloadavg())},
              "commit": commit, **data.info, "settings": vars(settings), "results": []}
    t0 = time.perf_counter()
    report["results"].append({"label": "word2vec-sif", **check_encoder(base, data, settings)})
    for run in args.runs:
        encoder = load_encoder(run)
        metrics = RunDir(run).read_metrics()
        last = metrics[-1] if metrics else {}
        stored = encoder.center
        variants = [("as stored", stored), ("without centring", None)] if stored is not None else \
            [("as stored", None), ("with centring (computed)", training_center(encoder))]
        for label, center in variants:
            encoder.center = center
            rec = check_encoder(encoder, data, settings)
            rec["encoder"]["centred"] = center is not None
            report["results"].append({"label": f"{Path(run).name}, {label}", "epochs": last.get("epoch"),
                                      "train_loss": last.get("train_loss"), "test_loss": last.get("test_loss"),
                                      **rec})
            print(json.dumps(report["results"][-1])[:400], flush=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
