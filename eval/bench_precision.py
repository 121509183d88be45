"""fp32 against bf16 on the hot paths, side by side in one run, each against a floor of this machine.

    python eval/bench_precision.py [--threads 1 2] [--repeats 5] [--precisions fp32,bf16] [--tasks ...]
                                   [--scale tiny|small|paper] [--device cpu|cuda|cuda:N] [--jsonl FILE]

Tasks (``--tasks``, all by default), each timed as one call:

- ``rollout``: :func:`seqgan_kit.rl.rollout.rollout_rewards` with the CNN discriminator's ``prob_real`` as the
  reward (SeqGAN's generator step), as in ``eval/bench_rollout.py``.
- ``mle``: :func:`seqgan_kit.train.mle.train_epoch` of an LSTM generator (SeqGAN's synthetic task), as in
  ``eval/bench_mle.py``; ``small`` is an epoch over 1,280 sequences (20 batches) instead of 9,984, ``tiny``
  over 320 (5 batches).
- ``disc``: the SeqGAN discriminator's training step (cross-entropy on 64 real + 64 generated rows, backward,
  Adam) at paper size, ``disc_steps`` of them per call (paper: one epoch, 156).
- ``relgan``: one RelGAN adversarial step (1 generator step through the Gumbel-softmax relaxation, then 5
  discriminator steps, RSGAN loss, Adam, clip 5) with the RMC generator and the multi-representation
  discriminator of ``recipes/synthetic_relgan.toml``.

Precisions: ``fp32``; ``bf16`` is the run's path under ``runtime.precision = "bf16"`` (a bfloat16 autocast
around the training computations, float32 master weights and Adam state; losses, noise and sampling float32).

The floor of a task in a precision is its FLOPs (counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
call: matmuls and convolutions, forward and backward) divided by the GEMM rate this process measures for that
precision (a ``GEMM`` x ``GEMM`` x ``GEMM`` matmul, under the same autocast; the best of the measurements before
the first and after every repeat, since load only slows a measurement). ``time / floor`` is then a property of
the code, not of the machine: 1 would be every FLOP at the large-GEMM rate. The floor ignores what is not a
GEMM (the sampler's ``exp`` pass over the logits, pointwise gates, the optimizer), so the ratio also says how
much time goes elsewhere.

Each repeat runs every (task, precision) once, the precision order rotating between repeats; medians over the
repeats. ``--jsonl FILE`` appends one record per (threads, task, precision) with every timing.

``--device cuda`` runs every task, the GEMM of the floor included, on that GPU (bfloat16 autocast of CUDA; the
clock stops after a ``torch.cuda.synchronize``); ``--threads`` then only sets the host's threads. The record
names the GPU and what ``runtime.precision = "auto"`` picks there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from seqgan_kit.device import choose_precision, cpu_flags
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator
from seqgan_kit.models.rmc_generator import RMCGenerator
from seqgan_kit.rl.rollout import rollout_rewards
from seqgan_kit.train.experiment import adam
from seqgan_kit.train.gan_losses import gan_losses
from seqgan_kit.train.mle import train_epoch

V, T = 5000, 20
PAPER_FILTERS = ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20], [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160])


@dataclass
class Scale:
    rollout_batch: int
    rollouts: int
    mle_sequences: int
    disc_steps: int
    relgan_batch: int
    gemm: int


SCALES = {
    "tiny": Scale(rollout_batch=4, rollouts=4, mle_sequences=320, disc_steps=1, relgan_batch=8, gemm=512),
    "small": Scale(rollout_batch=8, rollouts=8, mle_sequences=1280, disc_steps=4, relgan_batch=16, gemm=1024),
    "paper": Scale(rollout_batch=64, rollouts=16, mle_sequences=9984, disc_steps=156, relgan_batch=64, gemm=2048),
}


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """What ``Ranks.autocast`` gives a run of this precision on ``device``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels, so that a clock read after it has timed them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_rate(precision: str, n: int, device: torch.device, repeats: int = 3) -> float:
    """FLOP/s of an ``[n, n] @ [n, n]`` GEMM the way the models run one: ``F.linear`` on float32 operands under
    the precision's autocast (best of ``repeats``). On a CPU without AVX-512 a bfloat16 ``torch.mm`` takes
    another, ~6x slower path than ``F.linear``; the models only use the latter."""
    a, w = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def gemm() -> None:
        with autocast(precision, device):
            F.linear(a, w)
    gemm()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        gemm()
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- the tasks
def rollout_task(scale: Scale, precision: str, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    gen = LSTMGenerator(V, 32, 32, T).to(device)
    disc = CNNDiscriminator(V, T, 64, *PAPER_FILTERS).to(device)
    seqs = gen.sample(scale.rollout_batch, generator=torch.Generator(device=device).manual_seed(1))
    rng = torch.Generator(device=device).manual_seed(2)

    def call() -> object:
        with autocast(precision, device):
            return rollout_rewards(gen, disc.prob_real, seqs, scale.rollouts, rng=rng)
    return call


def mle_task(scale: Scale, precision: str, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    gen = LSTMGenerator(V, 32, 32, T).to(device)
    data = torch.randint(0, V, (scale.mle_sequences, T), generator=torch.Generator().manual_seed(1)).to(device)
    opt = adam(gen.parameters(), lr=0.01)
    rng = torch.Generator().manual_seed(2)  # the batch order, drawn on the host as in training

    def call() -> object:
        with autocast(precision, device):
            return train_epoch(gen, opt, data, 64, 5.0, rng=rng)
    return call


def disc_task(scale: Scale, precision: str, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    disc = CNNDiscriminator(V, T, 64, *PAPER_FILTERS).to(device)
    opt = adam(disc.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    seqs = torch.randint(0, V, (scale.disc_steps, 128, T), generator=g).to(device)
    labels = torch.cat([torch.ones(64), torch.zeros(64)]).long().to(device)

    def call() -> object:
        for batch in seqs:  # [128, T]
            with autocast(precision, device):
                loss = disc.loss(batch, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss
    return call


def relgan_task(scale: Scale, precision: str, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    b = scale.relgan_batch
    gen = RMCGenerator(V, T, emb_dim=32, mem_slots=1, head_size=64, num_heads=2).to(device)
    disc = RelGANDiscriminator(V, T, emb_dim=64, num_rep=16, filter_sizes=[2, 3, 4, 5],
                               num_filters=[100, 100, 100, 100], fc_dim=100).to(device)
    g_opt, d_opt = adam(gen.parameters(), lr=1e-4), adam(disc.parameters(), lr=1e-4)
    real = torch.randint(0, V, (b, T), generator=torch.Generator().manual_seed(1)).to(device)

    def step(opt: torch.optim.Optimizer, params, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    def call() -> object:
        with autocast(precision, device):
            _, soft = gen.gumbel_rollout(b, beta=10.0)  # [b, T, V], differentiable
            for p in disc.parameters():
                p.requires_grad_(False)
            g_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), "rsgan")[1]
        for p in disc.parameters():
            p.requires_grad_(True)
        step(g_opt, list(gen.parameters()), g_loss)
        for _ in range(5):
            with autocast(precision, device):
                with torch.no_grad():
                    _, soft = gen.gumbel_rollout(b, beta=10.0)
                d_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), "rsgan")[0]
            step(d_opt, list(disc.parameters()), d_loss)
        return d_loss
    return call


TASKS = {"rollout": rollout_task, "mle": mle_task, "disc": disc_task, "relgan": relgan_task}


# --------------------------------------------------------------------------- the run
def machine(device: torch.device) -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = cpu_flags()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return {"cpu": model, "cores": os.cpu_count(), "amx_bf16": "amx_bf16" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "avx512f": "avx512f" in flags,
            "device": str(device), "gpu": gpu, "auto_picks": choose_precision("auto", device, env={}),
            "torch": torch.__version__, "python": platform.python_version(), "commit": commit,
            "load_before": os.getloadavg()}


def bench(threads: int, tasks: list[str], precisions: list[str], repeats: int, scale: Scale,
          device: torch.device) -> list[dict]:
    torch.set_num_threads(threads)
    calls = {(t, p): TASKS[t](scale, p, device) for t in tasks for p in precisions}
    flops = {}
    for key, call in calls.items():  # one call each: warm-up (numba, oneDNN primitives) and the FLOP count
        flops[key] = count_flops(call)
    rates = {p: [gemm_rate(p, scale.gemm, device)] for p in precisions}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in calls}
    for r in range(repeats):
        order = precisions[r % len(precisions):] + precisions[:r % len(precisions)]
        for task in tasks:
            for p in order:
                synchronize(device)
                t0 = time.perf_counter()
                calls[(task, p)]()
                synchronize(device)
                times[(task, p)].append(time.perf_counter() - t0)
        for p in precisions:
            rates[p].append(gemm_rate(p, scale.gemm, device))
    rows = []
    for (task, p), ts in times.items():
        rate = max(rates[p])
        med = statistics.median(ts)
        floor = flops[(task, p)] / rate
        rows.append({"threads": threads, "task": task, "precision": p, "median_s": med, "times_s": ts,
                     "flops": flops[(task, p)], "gemm_flop_s": rate, "gemm_all": rates[p], "floor_s": floor,
                     "ratio_to_floor": med / floor})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--jsonl", metavar="FILE", help="append one JSON record per (threads, task, precision)")
    args = ap.parse_args()
    tasks, precisions, scale = args.tasks.split(","), args.precisions.split(","), SCALES[args.scale]
    for name, given, known in (("task", tasks, TASKS), ("precision", precisions, ("fp32", "bf16"))):
        if unknown := [x for x in given if x not in known]:
            ap.error(f"unknown {name} {unknown[0]!r}: choose from {', '.join(known)}")
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        ap.error(f"--device {args.device!r}: {err}")
    if device.type not in ("cpu", "cuda"):
        ap.error(f"--device {args.device!r}: this bench runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device!r}: torch {torch.__version__} sees no CUDA device here")
    info = machine(device)
    print(json.dumps(info))
    rows = []
    for threads in args.threads:
        rows += bench(threads, tasks, precisions, args.repeats, scale, device)
    info["load_after"] = os.getloadavg()
    print(f"\n{info['gpu'] or info['cpu']} (amx_bf16: {info['amx_bf16']}), torch {info['torch']}, "
          f"commit {info['commit']}, scale {args.scale}, median of {args.repeats}, "
          f"load {info['load_before']} -> {info['load_after']}")
    print(f"{'threads':>7} {'task':<8}{'prec':<6}{'median s':>10}{'floor s':>10}{'x floor':>9}{'GEMM GF/s':>11}"
          f"{'bf16 speed-up':>15}")
    by = {(r["threads"], r["task"], r["precision"]): r for r in rows}
    for r in rows:
        fp32 = by.get((r["threads"], r["task"], "fp32"))
        gain = f"{fp32['median_s'] / r['median_s']:.2f}x" if fp32 and r["precision"] != "fp32" else ""
        print(f"{r['threads']:>7} {r['task']:<8}{r['precision']:<6}{r['median_s']:>10.3f}{r['floor_s']:>10.3f}"
              f"{r['ratio_to_floor']:>8.1f}x{r['gemm_flop_s'] / 1e9:>11.1f}{gain:>15}")
    if args.jsonl:
        with open(args.jsonl, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({**info, **r, "scale": args.scale}) + "\n")


if __name__ == "__main__":
    main()
