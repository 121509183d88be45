"""Time the batched Monte Carlo rollout against its previous version and the reference algorithm, side by side
in one run, against a FLOP + exp floor, with a measured breakdown of where the time goes.

    python eval/bench_rollout.py [--cases paper,large] [--repeats 3] [--threads N] [--device auto]
                                 [--impls batched,previous,reference] [--disc-chunks 512,1024] [--json]

One call = the rewards for one generator step: B sequences, N rollouts per prefix, reward_fn = the
discriminator's ``prob_real`` (eval mode, paper-size highway CNN). Cases:

- ``paper``: B=64, N=16, T=20, V=5000, generator emb/hidden 32 (SeqGAN's synthetic task).
- ``large``: B=64, N=16, T=40, V=10000, generator emb/hidden 64 (same discriminator filters, all <= 40).

Implementations (``--impls``), interleaved in the same run so that load changes hit all alike:

- ``batched``: :func:`seqgan_kit.rl.rollout.rollout_rewards` as it is now.
- ``previous``: a frozen copy of the batched path before issue 13 (:func:`previous_rollout_rewards`: the
  softmax + cumsum + searchsorted sampler, ``softmax_inverse_cdf``, on logits with the bias added by the
  projection, and an LSTM step per sampling block).
- ``reference``: the original algorithm (:func:`seqgan_kit.rl.rollout.reference_rollout_rewards`, with the
  library's default sampler).

For each: median ms per call over ``--repeats`` (after one warm-up call each), tokens per second
(``N*B*T(T-1)/2`` sampled tokens per call), the generator-only time (the same call with a trivial reward_fn)
and the discriminator-only time (scoring the same completions the way the implementation does).

The floor (issue 13): the generator's matmul FLOPs (LSTM cell + vocabulary projection) and the
discriminator's (convolutions + highway + output) at the measured fp32 matmul rate (a 2048^3 GEMM), plus one
pass of ``exp`` over the V logits of every sampled token at the measured ``torch.exp`` throughput on a
``[rows, V]`` float32 block (the faster of rows = the rollout's CPU sampling block and rows = 128), both
measured in the same run, before the first repeat and after every repeat; the floor takes the best of these
measurements (load on a shared machine only slows a measurement down, so the best is the closest to the
machine's own rate, and the floor the strictest).

The breakdown times the pieces of the batched path at the same sizes, in the same run: an instrumented copy
of its sampling loop (projection GEMM, sampler, LSTM steps, the rest) and of the discriminator's forward over
the same chunks (embedding, window copies, convolution GEMMs, max-pooling, highway GEMM, the rest), with the
rate each GEMM piece achieves. Each piece is timed around its own ops (CPU ops are synchronous), so the
pieces add up to roughly the generator-only and discriminator-only times; what is left is bookkeeping.

``--json`` runs only the paper case and prints one JSON object (``ratio`` = reference / batched, the floor in
``floor_ms`` and its parts, ``ratio_to_floor``, the breakdown, the previous implementation's times).

Per precision (fp32 against bf16, each against the floor of its own measured GEMM rate): the same task in
``eval/bench_precision.py`` (results: ``eval/results/precision.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from seqgan_kit.device import resolve_device
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.discriminator import CNNDiscriminatorConfig as DiscriminatorConfig
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.sampling import sample_categorical
from seqgan_kit.rl import rollout as rollout_module
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
IMPLS = ("batched", "previous", "reference")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1000


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_rate(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul FLOP/s (median of ``repeats`` [n, n] @ [n, n])."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    ms = statistics.median(timed_ms(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / (ms / 1000)


def exp_rate(device: torch.device, rows: int, vocab: int, repeats: int = 5) -> float:
    """Measured ``torch.exp`` throughput in elements/s on a ``[rows, vocab]`` float32 block (out of place into a
    preallocated output, as a sampler's one pass would run), median of ``repeats`` timings of enough calls
    for ~50M elements."""
    x = torch.randn(rows, vocab, device=device)
    out = torch.empty_like(x)
    calls = max(1, 50_000_000 // x.numel())
    torch.exp(x, out=out)

    def run() -> None:
        for _ in range(calls):
            torch.exp(x, out=out)

    ms = statistics.median(timed_ms(run, device) for _ in range(repeats))
    return calls * x.numel() / (ms / 1000)


def best_exp_rate(device: torch.device, vocab: int) -> float:
    """The floor's ``exp`` throughput: the faster of a block of the rollout's CPU sampling rows and a 128-row
    block (cache-resident), so the floor does not grow with the block size the rollout happens to use."""
    block_rows = max(1, rollout_module.LOGITS_PER_BLOCK // vocab)
    return max(exp_rate(device, rows, vocab) for rows in sorted({block_rows, min(block_rows, 128)}))


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


# --------------------------------------------------------------------------- the previous batched path
@torch.no_grad()
def previous_rollout_rewards(gen: LSTMGenerator, reward_fn: Callable, seqs: torch.Tensor, num_rollouts: int,
                             *, max_batch: int = 65536, rng: torch.Generator | None = None) -> torch.Tensor:
    """The batched rollout as it was before issue 13 (commit 7494d39), fixed-length models only: per block of
    ``2**19 / V`` rows, logits with the bias (``F.linear``), the ``softmax_inverse_cdf`` sampler (softmax,
    cumsum, searchsorted) and an LSTM step for the block. Kept here so the speed-up is measured side by side."""
    seqs = seqs.to(gen.device, torch.long)
    b, t_len = seqs.shape
    n = num_rollouts
    lengths, nb = t_len - 1, n * b
    rows = lengths * nb
    comp = seqs.expand(lengths * n, b, t_len).reshape(rows, t_len)
    h_pre, c_pre = gen.prefix_states(seqs)
    h = h_pre.new_empty(rows, h_pre.shape[-1])
    c = c_pre.new_empty(rows, c_pre.shape[-1])
    block = max(1, min(max_batch, (1 << 19) // gen.vocab_size))
    for s in range(1, t_len):
        active = s * nb
        h[active - nb:active] = h_pre[:, s].repeat(n, 1)
        c[active - nb:active] = c_pre[:, s].repeat(n, 1)
        for lo in range(0, active, block):
            hi = min(active, lo + block)
            state = (h[lo:hi], c[lo:hi])
            tokens = sample_categorical(gen.logits(state), 1.0, rng, "softmax_inverse_cdf")
            comp[lo:hi, s] = tokens
            if s + 1 < t_len:
                h[lo:hi], c[lo:hi] = gen.advance(tokens, state)
    final = reward_fn(seqs)
    scores = torch.cat([reward_fn(comp[lo:lo + max_batch]) for lo in range(0, rows, max_batch)])
    rewards = final.new_empty(b, t_len)
    rewards[:, t_len - 1] = final
    rewards[:, :lengths] = scores.view(lengths, n, b).mean(dim=1).transpose(0, 1)
    return rewards


# --------------------------------------------------------------------------- breakdown (instrumented copies)
class Pieces:
    """Accumulated milliseconds per named piece: ``with pieces("name"): ...``."""

    def __init__(self, device: torch.device) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.device = device

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        sync(self.device)
        t0 = time.perf_counter()
        yield
        sync(self.device)
        self.ms[name] += (time.perf_counter() - t0) * 1000


@torch.no_grad()
def generator_breakdown(gen: LSTMGenerator, seqs: torch.Tensor, n: int, rng: torch.Generator,
                        device: torch.device) -> dict[str, float]:
    """An instrumented copy of the fixed-length sampling loop of ``rollout_completions`` (same blocks, same
    calls), timing each piece."""
    p = Pieces(device)
    b, t_len = seqs.shape
    lengths, nb = t_len - 1, n * b
    rows = lengths * nb
    with p("bookkeeping"):
        comp = seqs.expand(lengths * n, b, t_len).reshape(rows, t_len)
    with p("LSTM steps"):
        h_pre, c_pre = gen.prefix_states(seqs)
    h = h_pre.new_empty(rows, h_pre.shape[-1])
    c = c_pre.new_empty(rows, c_pre.shape[-1])
    block = rollout_module.LOGITS_PER_BLOCK // gen.vocab_size if device.type == "cpu" else 65536
    bias = gen.proj.bias
    weight_t = gen.proj.weight.t()
    for s in range(1, t_len):
        active = s * nb
        with p("bookkeeping"):
            h[active - nb:active] = h_pre[:, s].repeat(n, 1)
            c[active - nb:active] = c_pre[:, s].repeat(n, 1)
        for lo in range(0, active, block):
            hi = min(active, lo + block)
            with p("projection GEMM"):
                logits = torch.mm(h[lo:hi], weight_t)
            with p("sampler"):
                tokens = sample_categorical(logits, 1.0, rng, "inverse_cdf", bias=bias)
            with p("bookkeeping"):
                comp[lo:hi, s] = tokens
        if s + 1 < t_len:
            with p("LSTM steps"):
                new = gen.advance(comp[:active, s], (h[:active], c[:active]))
            with p("bookkeeping"):
                h[:active], c[:active] = new
    return dict(p.ms)


@torch.no_grad()
def discriminator_breakdown(disc: CNNDiscriminator, seqs: torch.Tensor, device: torch.device
                            ) -> tuple[dict[str, float], dict[str, float]]:
    """An instrumented copy of ``CNNDiscriminator.prob_real`` (fixed-length inputs, eval mode) over ``seqs`` in
    its default chunks: milliseconds per piece, and the GFLOP of each GEMM piece."""
    p = Pieces(device)
    chunk = max(1, disc.TOKENS_PER_CHUNK // disc.seq_len)
    d, e = disc.num_features, disc.emb_dim
    flops = {"convolution GEMMs": 0.0, "highway GEMM": 0.0}
    for lo in range(0, seqs.shape[0], chunk):
        x = seqs[lo:lo + chunk]
        b, t = x.shape
        with p("embedding"):
            emb = disc.embedding(x)  # [b, T, E]
        pooled = []
        for k, conv in zip(disc.filter_sizes, disc.convs, strict=True):
            pos = t - k + 1
            with p("window copies"):
                windows = emb.unfold(1, k, 1).transpose(2, 3).reshape(b * pos, k * e)
            with p("convolution GEMMs"):
                maps = conv(windows)
            flops["convolution GEMMs"] += 2 * windows.shape[0] * windows.shape[1] * conv.out_features / 1e9
            with p("max-pooling"):
                pooled.append(maps.view(b, pos, -1).amax(dim=1))
        with p("rest"):
            feats = torch.cat(pooled, dim=1).relu_()
        with p("highway GEMM"):
            hw = disc.highway(feats)
        flops["highway GEMM"] += 2 * b * d * 2 * d / 1e9
        with p("rest"):
            gate = torch.sigmoid(hw[:, d:] + disc.HIGHWAY_GATE_OFFSET)
            out = gate * hw[:, :d].relu() + (1.0 - gate) * feats
            torch.softmax(disc.out(out), dim=-1)[:, 1]
    return dict(p.ms), flops


# --------------------------------------------------------------------------- one case
def run_case(case: Case, device: torch.device, repeats: int, impls: list[str], disc_chunks: list[int]) -> dict:
    torch.manual_seed(0)
    gen = LSTMGenerator(case.vocab, case.dim, case.dim, case.length).to(device).eval()
    disc = CNNDiscriminator.from_config(DiscriminatorConfig(), case.vocab, case.length).to(device).eval()
    seqs = gen.sample(case.batch, generator=torch.Generator(device).manual_seed(1))
    rng = torch.Generator(device).manual_seed(2)
    n = case.rollouts

    completions = rollout_completions(gen, seqs, n, rng=rng)  # [T-1, N, B, T]
    flat = completions.reshape(-1, case.length)  # [(T-1)*N*B, T]

    def batched_disc() -> None:
        """What the batched paths spend in D: all completions in max_batch chunks, plus the full sequences."""
        for lo in range(0, flat.shape[0], 65536):
            disc.prob_real(flat[lo:lo + 65536])
        disc.prob_real(seqs)

    def reference_disc() -> None:
        """What the reference spends in D: (T-1)*N calls on B rows, plus the full sequences."""
        for lo in range(0, flat.shape[0], case.batch):
            disc.prob_real(flat[lo:lo + case.batch])
        disc.prob_real(seqs)

    full = {
        "batched": lambda r: rollout_rewards(gen, r, seqs, n, rng=rng),
        "previous": lambda r: previous_rollout_rewards(gen, r, seqs, n, rng=rng),
        "reference": lambda r: reference_rollout_rewards(gen, r, seqs, n, rng=rng),
    }
    calls: dict[str, Callable[[], object]] = {}
    for impl in impls:
        calls[impl] = lambda f=full[impl]: f(disc.prob_real)
        calls[impl + "_gen"] = lambda f=full[impl]: f(cheap_reward)
    calls["batched_disc"] = batched_disc
    for rows in disc_chunks:  # the same scoring with another prob_real chunk size (measurement only)
        calls[f"disc_chunk_{rows}"] = lambda rows=rows: (disc.prob_real(flat, batch_size=rows),
                                                         disc.prob_real(seqs, batch_size=rows))
    if "reference" in impls:
        calls["reference_disc"] = reference_disc
    # Warm-up: one call per implementation with a single rollout (same code paths, ~1/N of the time).
    rollout_rewards(gen, disc.prob_real, seqs, 1, rng=rng)
    previous_rollout_rewards(gen, disc.prob_real, seqs, 1, rng=rng)
    reference_rollout_rewards(gen, disc.prob_real, seqs, 1, rng=rng)
    times: dict[str, list[float]] = {k: [] for k in calls}
    g_parts: list[dict[str, float]] = []
    d_parts: list[dict[str, float]] = []
    d_gflop: dict[str, float] = {}
    scored = torch.cat([flat, seqs])
    rates = [matmul_rate(device)]  # re-measured after every repeat: the floor uses the best (a shared machine's
    exps = [best_exp_rate(device, case.vocab)]  # load only ever slows a measurement down)
    for rep in range(repeats):
        for key, fn in calls.items():  # interleaved, so load changes hit every implementation alike
            times[key].append(timed_ms(fn, device))
            print(f"[{case.name}] repeat {rep + 1}/{repeats} {key}: {times[key][-1]:.0f} ms", file=sys.stderr)
        g_parts.append(generator_breakdown(gen, seqs, n, rng, device))
        parts, d_gflop = discriminator_breakdown(disc, scored, device)
        d_parts.append(parts)
        rates.append(matmul_rate(device))
        exps.append(best_exp_rate(device, case.vocab))
    rate, exp_per_s = max(rates), max(exps)
    ms = {k: statistics.median(v) for k, v in times.items()}
    g_ms = {k: statistics.median(p[k] for p in g_parts) for k in g_parts[0]}
    d_ms = {k: statistics.median(p[k] for p in d_parts) for k in d_parts[0]}
    tokens = n * case.batch * case.length * (case.length - 1) // 2
    rows = n * case.batch * (case.length - 1)
    g_flops = generator_flops(case)
    d_flops = discriminator_flops(disc, rows + case.batch)
    proj_gflop = 2 * case.dim * case.vocab * tokens / 1e9
    lstm_gflop = (g_flops / 1e9) - proj_gflop
    floor = {
        "generator_matmul_ms": g_flops / rate * 1000,
        "exp_ms": tokens * case.vocab / exp_per_s * 1000,
        "discriminator_matmul_ms": d_flops / rate * 1000,
    }
    floor_ms = sum(floor.values())
    g_floor = floor["generator_matmul_ms"] + floor["exp_ms"]
    out = {
        "case": case.name,
        "B": case.batch, "N": n, "T": case.length, "V": case.vocab, "dim": case.dim,
        "sampled_tokens": tokens,
        "scored_rows": rows + case.batch,
        "generator_gflop": g_flops / 1e9,
        "discriminator_gflop": d_flops / 1e9,
        # Kept from the first version of this benchmark: the floors at the matmul rate alone.
        "generator_floor_ms": g_flops / rate * 1000,
        "discriminator_floor_ms": d_flops / rate * 1000,
        "floor_parts_ms": floor,
        "floor_ms": floor_ms,
        "generator_floor_with_exp_ms": g_floor,
        "breakdown_generator_ms": g_ms,
        "breakdown_discriminator_ms": d_ms,
        "gemm_gflops_achieved": {
            "projection GEMM": proj_gflop / (g_ms["projection GEMM"] / 1000),
            "LSTM steps (GEMMs + gates)": lstm_gflop / (g_ms["LSTM steps"] / 1000),
            "convolution GEMMs": d_gflop["convolution GEMMs"] / (d_ms["convolution GEMMs"] / 1000),
            "highway GEMM": d_gflop["highway GEMM"] / (d_ms["highway GEMM"] / 1000),
        },
        "sampler_ns_per_logit": g_ms["sampler"] * 1e6 / (tokens * case.vocab),
        "exp_ns_per_logit": 1e9 / exp_per_s,
        "all_ms": times,
        "matmul_gflops": rate / 1e9,
        "exp_gelem_per_s": exp_per_s / 1e9,
        "matmul_gflops_samples": [r / 1e9 for r in rates],
        "exp_gelem_per_s_samples": [r / 1e9 for r in exps],
    }
    for impl in impls:
        out[f"{impl}_ms"] = ms[impl]
        out[f"{impl}_gen_ms"] = ms[impl + "_gen"]
        out[f"{impl}_tokens_per_s"] = tokens / (ms[impl] / 1000)
        out[f"{impl}_ratio_to_floor"] = ms[impl] / floor_ms
        out[f"{impl}_gen_ratio_to_floor"] = ms[impl + "_gen"] / g_floor
    out["batched_disc_ms"] = ms["batched_disc"]
    out["disc_chunk_ms"] = {rows: ms[f"disc_chunk_{rows}"] for rows in disc_chunks}
    out["disc_default_chunk_rows"] = max(1, disc.TOKENS_PER_CHUNK // disc.seq_len)
    out["batched_disc_ratio_to_floor"] = ms["batched_disc"] / floor["discriminator_matmul_ms"]
    out["ratio_to_floor"] = out["batched_ratio_to_floor"]
    if "previous" in impls:
        out["speedup_vs_previous"] = ms["previous"] / ms["batched"]
        out["speedup_vs_previous_generator_only"] = ms["previous_gen"] / ms["batched_gen"]
    if "reference" in impls:
        out["reference_disc_ms"] = ms["reference_disc"]
        out["ratio"] = ms["reference"] / ms["batched"]
        out["ratio_generator_only"] = ms["reference_gen"] / ms["batched_gen"]
        out["ratio_discriminator_only"] = ms["reference_disc"] / ms["batched_disc"]
    return out


def print_table(results: list[dict], device: torch.device, threads: int, load: tuple, impls: list[str]) -> None:
    print(f"machine: {cpu_model()}, {platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__}, device {device}, {threads} torch threads")
    print(f"load average (1 min) before: {load[0]:.2f}, after: {load[1]:.2f}")
    for r in results:
        print(f"{r['case']}: fp32 matmul rate {r['matmul_gflops']:.0f} GFLOP/s, torch.exp "
              f"{r['exp_gelem_per_s']:.2f} G elements/s (best of {len(r['matmul_gflops_samples'])} measurements "
              f"through the run: {', '.join(f'{x:.0f}' for x in r['matmul_gflops_samples'])} GFLOP/s; "
              f"{', '.join(f'{x:.2f}' for x in r['exp_gelem_per_s_samples'])} G/s)")
    head = (f"{'case':<7}{'impl':<11}{'ms/call':>9}{'x floor':>9}{'tokens/s':>11}{'G-only ms':>11}"
            f"{'G x floor':>11}{'D-only ms':>11}{'D x floor':>11}")
    print(head)
    for r in results:
        for impl in impls:
            disc_ms = r["reference_disc_ms"] if impl == "reference" else r["batched_disc_ms"]
            d_floor = r["floor_parts_ms"]["discriminator_matmul_ms"]
            print(f"{r['case']:<7}{impl:<11}{r[impl + '_ms']:>9.0f}{r[impl + '_ratio_to_floor']:>8.2f}x"
                  f"{r[impl + '_tokens_per_s']:>11.3g}{r[impl + '_gen_ms']:>11.0f}"
                  f"{r[impl + '_gen_ratio_to_floor']:>10.2f}x{disc_ms:>11.0f}{disc_ms / d_floor:>10.2f}x")
        if "previous" in impls:
            print(f"{'':<7}batched vs previous: {r['speedup_vs_previous']:.2f}x per call, "
                  f"{r['speedup_vs_previous_generator_only']:.2f}x generator-only")
        if "reference" in impls:
            print(f"{'':<7}batched vs reference: {r['ratio']:.2f}x per call, {r['ratio_generator_only']:.2f}x "
                  f"generator-only, {r['ratio_discriminator_only']:.2f}x discriminator-only")
    print("G-only: the same call with a trivial reward_fn (sampling + bookkeeping). D-only: scoring the same "
          "completions (batched/previous: max_batch chunks; reference: B-row calls). The previous path "
          "shares the batched path's D.")
    for r in results:
        f = r["floor_parts_ms"]
        print(f"\nfloor ({r['case']}): generator matmuls {r['generator_gflop']:.1f} GFLOP -> "
              f"{f['generator_matmul_ms']:.0f} ms; exp over V per sampled token "
              f"({r['sampled_tokens']} x {r['V']}) -> {f['exp_ms']:.0f} ms; discriminator "
              f"{r['discriminator_gflop']:.1f} GFLOP over {r['scored_rows']} rows -> "
              f"{f['discriminator_matmul_ms']:.0f} ms; total {r['floor_ms']:.0f} ms")
        print(f"where the batched call's time goes ({r['case']}, instrumented copies, median of repeats):")
        g, d, rates = r["breakdown_generator_ms"], r["breakdown_discriminator_ms"], r["gemm_gflops_achieved"]
        total = r["batched_ms"]
        for part, ms in list(g.items()) + list(d.items()):
            side = "G" if part in g else "D"
            extra = f"  ({rates[part]:.0f} GFLOP/s)" if part in rates else ""
            if part == "LSTM steps":
                extra = f"  ({rates['LSTM steps (GEMMs + gates)']:.0f} GFLOP/s counting the GEMM FLOPs)"
            if part == "sampler":
                extra = (f"  ({r['sampler_ns_per_logit']:.2f} ns per logit; torch.exp alone "
                         f"{r['exp_ns_per_logit']:.2f})")
            print(f"  {side} {part:<20}{ms:>8.0f} ms {100 * ms / total:>5.1f}%{extra}")
        if r["disc_chunk_ms"]:
            chunks = ", ".join(f"{rows} rows {ms:.0f} ms" for rows, ms in r["disc_chunk_ms"].items())
            print(f"  D-only with other prob_real chunk sizes (default {r['disc_default_chunk_rows']} rows: "
                  f"{r['batched_disc_ms']:.0f} ms): {chunks}")
        rest = total - sum(g.values()) - sum(d.values())
        print(f"  - {'not attributed':<20}{rest:>8.0f} ms {100 * rest / total:>5.1f}%  (batched call minus the "
              f"pieces: Python, scoring glue, timing noise)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="paper,large", help="comma-separated: paper, large")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch CPU threads (default: all cores available to this process)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated, batched first: {', '.join(IMPLS)}")
    ap.add_argument("--disc-chunks", default="", help="also time D-only with these prob_real batch sizes, "
                    "e.g. 512,1024 (measurement only)")
    ap.add_argument("--json", action="store_true", help="paper case only, one JSON object")
    ap.add_argument("--append-json", metavar="FILE", help="also append one JSON line per case to FILE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = ["paper"] if args.json else [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    if not impls or impls[0] != "batched" or any(i not in IMPLS for i in impls):
        ap.error(f"--impls: batched first, then any of {IMPLS[1:]}")
    disc_chunks = [int(c) for c in args.disc_chunks.split(",") if c.strip()]
    load_before = os.getloadavg()[0]
    results = [run_case(CASES[name], device, args.repeats, impls, disc_chunks) for name in names]
    load_after = os.getloadavg()[0]
    run_info = dict(device=str(device), cpu=cpu_model(), threads=args.threads, load_before=load_before,
                    load_after=load_after,
                    torch=torch.__version__, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    if args.append_json:
        with open(args.append_json, "a") as f:
            for r in results:
                f.write(json.dumps({**r, **run_info}) + "\n")
    if args.json:
        print(json.dumps({**results[0], **run_info}))
        return
    print_table(results, device, args.threads, (load_before, load_after), impls)


if __name__ == "__main__":
    main()
