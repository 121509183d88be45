"""Time the batched Monte Carlo rollout against the reference algorithm, side by side in one run.

    python eval/bench_rollout.py [--cases paper,large] [--repeats 3] [--threads N] [--device auto] [--json]

One call = the rewards for one generator step: B sequences, N rollouts per prefix, reward_fn = the
discriminator's ``prob_real`` (eval mode, paper-size highway CNN). Cases:

- ``paper``: B=64, N=16, T=20, V=5000, generator emb/hidden 32 (SeqGAN's synthetic task).
- ``large``: B=64, N=16, T=40, V=10000, generator emb/hidden 64 (same discriminator filters, all <= 40).

For each case and implementation: median ms per call over ``--repeats`` (after one warm-up call each, the two
implementations interleaved in the same run), their ratio, and the throughput in sampled tokens per second
(``N*B*T(T-1)/2`` rows x steps per call). The same calls with a trivial reward_fn give the generator-only
(sampling) time; scoring the same completions the way each implementation does gives the D-only time. The
FLOP floor divides the generator's (LSTM cell + vocabulary projection) and the discriminator's FLOPs by a
measured matmul rate.

``--json`` runs only the paper case and prints ``{"ratio": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from seqgan_kit.device import resolve_device
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.discriminator import CNNDiscriminatorConfig as DiscriminatorConfig
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.rl.rollout import reference_rollout_rewards, rollout_completions, rollout_rewards


@dataclass
class Case:
    name: str
    batch: int
    rollouts: int
    length: int
    vocab: int
    dim: int  # generator emb = hidden


CASES = {
    "paper": Case("paper", 64, 16, 20, 5000, 32),
    "large": Case("large", 64, 16, 40, 10000, 64),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1000


def matmul_rate(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul FLOP/s (median of ``repeats`` [n, n] @ [n, n])."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    ms = statistics.median(timed_ms(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / (ms / 1000)


def generator_flops(case: Case) -> float:
    """FLOPs of the N*B*T(T-1)/2 sampled steps: LSTM cell (2 GEMMs + gates) + vocabulary projection."""
    e = h = case.dim
    per_step = 2 * (e + h) * 4 * h + 10 * 4 * h + 2 * h * case.vocab
    steps = case.rollouts * case.batch * case.length * (case.length - 1) // 2
    return steps * per_step


def discriminator_flops(disc: CNNDiscriminator, rows: int) -> float:
    """FLOPs of scoring ``rows`` sequences: the convolutions (valid windows only) + highway + output."""
    t, e, d = disc.seq_len, disc.emb_dim, disc.num_features
    conv = sum(2 * (t - k + 1) * k * e * f for k, f in zip(disc.filter_sizes, disc.num_filters, strict=True))
    return rows * (conv + 2 * d * 2 * d + 2 * d * 2)


def cheap_reward(seqs: torch.Tensor) -> torch.Tensor:
    """Trivial reward (for the generator-only timing): ``[M, T]`` -> ``[M]``."""
    return seqs[:, 0].float()


def run_case(case: Case, device: torch.device, repeats: int, rate: float) -> dict:
    torch.manual_seed(0)
    gen = LSTMGenerator(case.vocab, case.dim, case.dim, case.length).to(device).eval()
    disc = CNNDiscriminator.from_config(DiscriminatorConfig(), case.vocab, case.length).to(device).eval()
    seqs = gen.sample(case.batch, generator=torch.Generator(device).manual_seed(1))
    rng = torch.Generator(device).manual_seed(2)
    n = case.rollouts

    completions = rollout_completions(gen, seqs, n, rng=rng)  # [T-1, N, B, T]
    flat = completions.reshape(-1, case.length)  # [(T-1)*N*B, T]

    def batched_disc() -> None:
        """What the batched path spends in D: all completions in max_batch chunks, plus the full sequences."""
        for lo in range(0, flat.shape[0], 65536):
            disc.prob_real(flat[lo:lo + 65536])
        disc.prob_real(seqs)

    def reference_disc() -> None:
        """What the reference spends in D: (T-1)*N calls on B rows, plus the full sequences."""
        for lo in range(0, flat.shape[0], case.batch):
            disc.prob_real(flat[lo:lo + case.batch])
        disc.prob_real(seqs)

    calls = {
        "batched": lambda: rollout_rewards(gen, disc.prob_real, seqs, n, rng=rng),
        "reference": lambda: reference_rollout_rewards(gen, disc.prob_real, seqs, n, rng=rng),
        "batched_gen": lambda: rollout_rewards(gen, cheap_reward, seqs, n, rng=rng),
        "reference_gen": lambda: reference_rollout_rewards(gen, cheap_reward, seqs, n, rng=rng),
        "batched_disc": batched_disc,
        "reference_disc": reference_disc,
    }
    # Warm-up: one call per implementation with a single rollout (same code paths, ~1/N of the time).
    rollout_rewards(gen, disc.prob_real, seqs, 1, rng=rng)
    reference_rollout_rewards(gen, disc.prob_real, seqs, 1, rng=rng)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for rep in range(repeats):
        for key, fn in calls.items():  # interleaved, so load changes hit both implementations alike
            times[key].append(timed_ms(fn, device))
            print(f"[{case.name}] repeat {rep + 1}/{repeats} {key}: {times[key][-1]:.0f} ms", file=sys.stderr)
    ms = {k: statistics.median(v) for k, v in times.items()}
    tokens = n * case.batch * case.length * (case.length - 1) // 2
    rows = n * case.batch * (case.length - 1)
    g_flops = generator_flops(case)
    d_flops = discriminator_flops(disc, rows + case.batch)
    return {
        "case": case.name,
        "B": case.batch, "N": n, "T": case.length, "V": case.vocab, "dim": case.dim,
        "batched_ms": ms["batched"],
        "reference_ms": ms["reference"],
        "ratio": ms["reference"] / ms["batched"],
        "batched_gen_ms": ms["batched_gen"],
        "reference_gen_ms": ms["reference_gen"],
        "ratio_generator_only": ms["reference_gen"] / ms["batched_gen"],
        "batched_disc_ms": ms["batched_disc"],
        "reference_disc_ms": ms["reference_disc"],
        "ratio_discriminator_only": ms["reference_disc"] / ms["batched_disc"],
        "batched_tokens_per_s": tokens / (ms["batched"] / 1000),
        "reference_tokens_per_s": tokens / (ms["reference"] / 1000),
        "sampled_tokens": tokens,
        "scored_rows": rows + case.batch,
        "generator_gflop": g_flops / 1e9,
        "discriminator_gflop": d_flops / 1e9,
        "generator_floor_ms": g_flops / rate * 1000,
        "discriminator_floor_ms": d_flops / rate * 1000,
        "all_ms": times,
    }


def print_table(results: list[dict], device: torch.device, threads: int, rate: float, load: tuple) -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''} {platform.system()}, "
          f"{os.cpu_count()} logical CPUs, torch {torch.__version__}, device {device}, "
          f"{threads} torch threads")
    print(f"load average before: {load[0]}, after: {load[1]}; "
          f"measured fp32 matmul rate {rate / 1e9:.0f} GFLOP/s")
    head = (f"{'case':<7}{'impl':<11}{'ms/call':>10}{'ratio':>8}{'tokens/s':>12}{'G-only ms':>11}"
            f"{'G ratio':>9}{'D-only ms':>11}{'D ratio':>9}")
    print(head)
    for r in results:
        for impl in ("reference", "batched"):
            one = impl == "reference"
            ratio, g_ratio, d_ratio = (1.0, 1.0, 1.0) if one else (
                r["ratio"], r["ratio_generator_only"], r["ratio_discriminator_only"])
            print(f"{r['case']:<7}{impl:<11}{r[impl + '_ms']:>10.0f}{ratio:>7.2f}x"
                  f"{r[impl + '_tokens_per_s']:>12.3g}{r[impl + '_gen_ms']:>11.0f}{g_ratio:>8.2f}x"
                  f"{r[impl + '_disc_ms']:>11.0f}{d_ratio:>8.2f}x")
    print("G-only: the same call with a trivial reward_fn (generator sampling + bookkeeping). D-only: scoring "
          "the same completions the way each implementation does (max_batch chunks vs B-row calls).")
    print("\nFLOP floors at the measured matmul rate (batched path):")
    for r in results:
        print(f"  {r['case']}: generator {r['generator_gflop']:.1f} GFLOP -> "
              f"{r['generator_floor_ms']:.0f} ms; "
              f"discriminator {r['discriminator_gflop']:.1f} GFLOP over {r['scored_rows']} rows -> "
              f"{r['discriminator_floor_ms']:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="paper,large", help="comma-separated: paper, large")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch CPU threads (default: all cores available to this process)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true", help="paper case only, one JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = ["paper"] if args.json else [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    load_before = os.getloadavg()[0]
    rate = matmul_rate(device)
    results = [run_case(CASES[name], device, args.repeats, rate) for name in names]
    load_after = os.getloadavg()[0]
    if args.json:
        out = dict(results[0])
        out.update(device=str(device), threads=args.threads, matmul_gflops=rate / 1e9,
                   load_before=load_before, load_after=load_after)
        print(json.dumps(out))
        return
    print_table(results, device, args.threads, rate, (load_before, load_after))


if __name__ == "__main__":
    main()
