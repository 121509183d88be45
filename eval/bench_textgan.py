"""Time the units of a TextGAN recipe and project the whole run, without running it.

    python eval/bench_textgan.py [recipes/synthetic_textgan.toml] [--repeats 5] [--threads 1] [--json]

Builds the recipe's experiment on the CPU (its oracle, data and models, no MLE) and times, interleaved over
``--repeats`` rounds (after one warm-up each): one MLE epoch (``mle.batch_size`` batches over the training set),
a generator update, a discriminator update, one ``nll_oracle_z`` evaluation and one task evaluation. Each is
reported as the median wall time and the median CPU time of this process (``time.process_time``: on a shared,
loaded box the CPU time is the steadier number). The projection multiplies them by the recipe's counts:
``mle.epochs`` epochs with an evaluation every ``mle.eval_every``, ``d_pretrain_steps``, then ``epochs`` x
(``g_steps`` + ``d_steps``) with both evaluations every ``eval_every`` epochs and at epoch 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqgan_kit.runs.rundir import RunDir  # noqa: E402
from seqgan_kit.train.experiment import Experiment  # noqa: E402
from seqgan_kit.train.mle import MLEPretraining  # noqa: E402
from seqgan_kit.train.recipe import load_recipe  # noqa: E402
from seqgan_kit.train.textgan import TextGANTrainer  # noqa: E402


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/synthetic_textgan.toml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_recipe(args.recipe, ['device="cpu"', 'runtime.precision="fp32"'])
    s = cfg.algo
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(cfg, RunDir(Path(tmp) / "run"), torch.device("cpu"))
        mle = MLEPretraining(exp)
        trainer = TextGANTrainer(exp)
        units = {
            "mle_epoch": lambda: mle.epoch(1),
            "g_update": lambda: trainer.generator_step("bench"),
            "d_update": lambda: trainer.discriminator_step("bench"),
            "nll_oracle_z": lambda: trainer.nll_oracle_z("bench", 1),
            "task_evaluation": lambda: exp.evaluate("bench", 1),
        }
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in units}
        for fn in units.values():
            fn()  # warm-up
        for _ in range(args.repeats):
            for name, fn in units.items():
                samples[name].append(timed(fn))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}
    evals = s.epochs // s.eval_every + (0 if s.epochs % s.eval_every == 0 else 1) + 1  # + epoch 0
    mle_evals = cfg.mle.epochs // cfg.mle.eval_every + 1
    parts = {
        "mle": cfg.mle.epochs * med["mle_epoch"][1] + mle_evals * med["task_evaluation"][1],
        "pretrain_d": s.d_pretrain_steps * med["d_update"][1],
        "adversarial": s.epochs * (s.g_steps * med["g_update"][1] + s.d_steps * med["d_update"][1])
        + evals * (med["nll_oracle_z"][1] + med["task_evaluation"][1]),
    }
    result = {"recipe": args.recipe, "threads": args.threads, "repeats": args.repeats,
              "median_wall_s": {k: round(v[0], 4) for k, v in med.items()},
              "median_cpu_s": {k: round(v[1], 4) for k, v in med.items()},
              "projected_cpu_s": {k: round(v, 1) for k, v in parts.items()},
              "projected_cpu_total_min": round(sum(parts.values()) / 60, 1)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.recipe}: {args.threads} thread(s), median of {args.repeats}")
    for k in units:
        print(f"  {k:16s} wall {med[k][0]:8.3f} s   cpu {med[k][1]:8.3f} s")
    for k, v in parts.items():
        print(f"  projected {k:12s} {v / 60:6.1f} min of CPU time")
    print(f"  projected total    {result['projected_cpu_total_min']:6.1f} min of CPU time")


if __name__ == "__main__":
    main()
