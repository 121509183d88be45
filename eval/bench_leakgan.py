"""Time LeakGAN's pieces at the CPU recipe's and the paper's sizes, side by side in one run.

    python eval/bench_leakgan.py [--repeats 3] [--threads 1] [--cases cpu,paper]

Cases: ``cpu`` = recipes/synthetic_leakgan_cpu.toml's models (discriminator 430 features), ``paper`` =
recipes/synthetic_leakgan.toml's (1,720); both V = 5000, T = 20, generator emb/hidden 32, goal 16, step 4.

For each case, the median seconds over ``--repeats`` (after one warm-up) of:

- ``prefix features, one CNN pass per prefix``: the leaked features of the T + 1 prefixes of 64 sequences by
  the discriminator's forward on every prefix (the direct way), and ``prefix features, one pass``:
  :meth:`LeakGANGenerator.prefix_features` (interleaved, so load changes hit both alike);
- ``teacher-forced pass`` (64 rows, no gradient), ``pretraining batch`` (64 rows: forward, backward, both
  optimizer steps), ``sample 64`` (20 incremental steps), ``rollout rewards`` (64 samples, 4 rollouts per
  segment, scored by the discriminator), ``discriminator batch`` (64 rows: forward, backward, step).

Prints one markdown table, with the machine and its load average at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.leakgan_generator import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, LeakGANGenerator
from seqgan_kit.rl.leakgan_rewards import segment_rollout_rewards

CASES = {"cpu": [n // 4 for n in PAPER_NUM_FILTERS], "paper": PAPER_NUM_FILTERS}


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(case: str, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    filters = CASES[case]
    gen = LeakGANGenerator(5000, 20, filter_sizes=PAPER_FILTER_SIZES, num_filters=filters)
    disc = CNNDiscriminator(5000, 20, 64, PAPER_FILTER_SIZES, filters, dropout_keep=1.0, l2_reg=0.0)
    gen.sync_features(disc)
    x = torch.randint(0, 5000, (64, 20))
    workers = torch.optim.Adam(gen.worker_parameters(), 0.01)
    managers = torch.optim.Adam(gen.manager_parameters(), 0.01)
    d_opt = torch.optim.Adam(disc.parameters(), 5e-5)

    def direct():
        with torch.no_grad():
            gen.features(gen.unfilled_prefixes(x).reshape(-1, 20))  # [64*21, 20] -> [64*21, D]

    def one_pass():
        with torch.no_grad():
            gen.prefix_features(x)

    def forward():
        with torch.no_grad():
            gen.teacher_forced(x)

    def pretrain_batch():
        out = gen.teacher_forced(x, detach_goals=True)
        f = out.features[:, ::4]
        cos = (F.normalize(f[:, 1:] - f[:, :-1], dim=-1) * F.normalize(out.segment_goals, dim=-1)).sum(-1)
        loss = F.cross_entropy(out.logits.reshape(-1, 5000), x.reshape(-1)) - cos.mean()
        workers.zero_grad()
        managers.zero_grad()
        loss.backward()
        workers.step()
        managers.step()

    def sample():
        gen.sample(64)

    def rollout():
        segment_rollout_rewards(gen, disc.prob_real, x, 4)

    def d_batch():
        loss = disc.loss(x, torch.ones(64, dtype=torch.long))
        d_opt.zero_grad()
        loss.backward()
        d_opt.step()

    # the two feature paths interleaved
    a, b = [], []
    direct(), one_pass()
    for _ in range(repeats):
        for fn, out in ((direct, a), (one_pass, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    result = {"prefix features, one CNN pass per prefix": statistics.median(a),
              "prefix features, one pass": statistics.median(b)}
    for name, fn in (("teacher-forced pass", forward), ("pretraining batch", pretrain_batch),
                     ("sample 64", sample), ("rollout rewards", rollout), ("discriminator batch", d_batch)):
        result[name] = median_time(fn, repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", default="cpu,paper")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = args.cases.split(",")
    results = {case: bench(case, args.repeats) for case in cases}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} thread(s), load average (1 min) {os.getloadavg()[0]:.1f}")
    print()
    print(f"| seconds (median of {args.repeats}) | {' | '.join(cases)} |")
    print("|---|" + "---|" * len(cases))
    for name in results[cases[0]]:
        print(f"| {name} | " + " | ".join(f"{results[c][name]:.3f}" for c in cases) + " |")


if __name__ == "__main__":
    main()
