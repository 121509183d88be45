"""What a recipe's run will cost, from a few timed units: CPU seconds per MLE epoch, per discriminator (ranker)
pretraining round, per adversarial iteration and per evaluation, measured on a shortened copy of the recipe,
then multiplied by the recipe's own counts.

    python eval/cost_recipe_units.py recipes/synthetic_rankgan_cpu.toml [--iterations 2] [--rounds 2] [--out F]
                                     [--set KEY=VALUE ...]

``--set`` overrides the recipe as ``seqgan-kit train --set`` does (e.g. ``data.dir=...`` for a text recipe); the
counts the estimate multiplies are the overridden recipe's.

CPU time (``time.process_time``) is what the estimate uses: on a shared machine wall time depends on the load,
CPU time much less; both are printed. The shortened run: 1 MLE epoch, ``--rounds`` pretraining rounds and
``--iterations`` adversarial iterations of the recipe's algorithm (every other setting as the recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from seqgan_kit.train import mle
from seqgan_kit.train.experiment import Experiment
from seqgan_kit.train.recipe import load_recipe
from seqgan_kit.train.registry import get_algorithm
from seqgan_kit.train.runner import train

UNITS = {"mle_epoch": (mle, "train_epoch"), "evaluation": (Experiment, "evaluate")}


def timed(totals: dict[str, list[float]], name: str, fn):
    def wrapper(*args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            entry = totals.setdefault(name, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += time.process_time() - cpu
            entry[2] += time.perf_counter() - wall

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the measurement as JSON here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_recipe(args.recipe, args.set)
    table = cfg.spec.table
    trainer = get_algorithm(cfg.algorithm).trainer
    units = {**UNITS, "pretrain_round": (trainer, "pretrain_round"), "iteration": (trainer, "iteration")}
    totals: dict[str, list[float]] = {}
    for name, (owner, attr) in units.items():
        setattr(owner, attr, timed(totals, name, getattr(owner, attr)))
    short = [*args.set, "mle.epochs=1", f"{table}.d_pretrain_rounds={args.rounds}",
             f"{table}.iterations={args.iterations}", "runtime.threads=1"]
    with tempfile.TemporaryDirectory() as tmp:
        train(args.recipe, short, run_dir=str(Path(tmp) / "run"))
    algo = cfg.algo
    counts = {"mle_epoch": cfg.mle.epochs, "pretrain_round": algo.d_pretrain_rounds, "iteration": algo.iterations,
              # evaluations: MLE at 0, every eval_every and the last; adversarial at 0, every eval_every and the last
              "evaluation": (1 + cfg.mle.epochs // cfg.mle.eval_every + (cfg.mle.epochs % cfg.mle.eval_every > 0)
                             + 1 + algo.iterations // algo.eval_every + (algo.iterations % algo.eval_every > 0))}
    per_unit = {k: {"count_measured": v[0], "cpu_s": v[1] / v[0], "wall_s": v[2] / v[0]} for k, v in totals.items()}
    estimate = {k: counts[k] * per_unit[k]["cpu_s"] for k in counts if k in per_unit}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"recipe": args.recipe, "overrides": args.set, "commit": commit,
              "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "load_average_1_5_15": os.getloadavg(), "torch": torch.__version__,
              "threads": 1, "per_unit": per_unit, "recipe_counts": counts, "estimate_cpu_s": estimate,
              "estimate_total_cpu_min": sum(estimate.values()) / 60}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
