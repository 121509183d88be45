"""Distributed training on this machine: per-step time of 1 rank x 2 threads vs 2 ranks x 1 thread, the
communication each algorithm's step really makes, and the scaling that communication allows on 8 GPUs.

    python eval/bench_distributed.py [--cases mle,seqgan,gumbel,relgan,maskgan] [--steps N] [--json FILE]

For each case (a CPU recipe of ``recipes/`` with its evaluation shrunk so that it does not dominate the step)
the benchmark trains the same short run twice, interleaved:

- ``1x2``: one process, 2 torch threads (``seqgan_kit.train.runner.train``, no process group);
- ``2x1``: two ranks (gloo) of 1 thread each, started by ``torch.multiprocessing.spawn``. Inside them every
  DDP module gets a communication hook that counts the gradient bytes it all-reduces, and every collective
  of :class:`seqgan_kit.distributed.Ranks` (loss sums, broadcasts of metrics) is counted too.

Per-step time is the median difference of ``elapsed_s`` between consecutive records of the case's main phase
(every record is one step: ``eval_every = 1``). FLOPs per step are counted on one process by
the formulas of ``torch.utils.flop_counter`` over the same steps (forward + backward matmuls, convolutions
and attention; elementwise work is not counted). The 8-GPU projection is an alpha-beta ring all-reduce model
with no overlap of communication and compute, computed **from the FLOP count** at an assumed sustained GPU
rate (no GPU in this task), so it is a projection, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMALL_EVAL = ["eval.n_samples=64", "oracle.n_test=256", "runtime.threads=1"]
CASES = {
    # name: (recipe, overrides, main phase, the key that sets its number of steps, steps)
    "mle": ("synthetic_mle.toml", ["mle.eval_every=1", "mle.checkpoint_every=100"], "pretrain_g", "mle.epochs", 4),
    "seqgan": ("synthetic_seqgan_cpu.toml", ["mle.epochs=0", "seqgan.d_pretrain_rounds=0", "seqgan.eval_every=1",
                                             "seqgan.checkpoint_every=100"], "adversarial", "seqgan.iterations", 4),
    "gumbel": ("synthetic_gumbel_lstm.toml", ["mle.epochs=0", "gumbel.eval_every=1", "gumbel.checkpoint_every=100"],
               "adversarial", "gumbel.steps", 12),
    "relgan": ("synthetic_relgan.toml", ["mle.epochs=0", "gumbel.eval_every=1", "gumbel.checkpoint_every=100"],
               "adversarial", "gumbel.steps", 8),
    "maskgan": ("synthetic_maskgan.toml", ["mle.epochs=0", "maskgan.mask_mle_steps=0", "maskgan.eval_every=1",
                                           "maskgan.checkpoint_every=100"], "actor_critic", "maskgan.steps", 12),
}
# Assumptions of the 8-GPU projection (alpha: latency per ring step; beta: bus bandwidth per GPU).
LINKS = {"NVLink": (10e-6, 300e9), "25 Gb/s Ethernet": (50e-6, 25e9 / 8)}
GPU_RATES = (10e12, 100e12)  # sustained FLOP/s assumed for these small recurrent models (no GPU measured)


def step_times(run: Path, phase: str) -> list[float]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    t = [r["elapsed_s"] for r in recs if r["phase"] == phase]
    return [b - a for a, b in zip(t[1:], t[2:], strict=False)]  # skip the first step (warm-up, first evaluation)


def overrides_of(case: str, steps: int | None = None) -> tuple[str, list[str]]:
    recipe, extra, _, key, default = CASES[case]
    return str(ROOT / "recipes" / recipe), SMALL_EVAL + ["device=cpu", f"{key}={default if steps is None else steps}",
                                                         *extra]


# --------------------------------------------------------------------------- the 2-rank worker
def _rank(rank: int, world: int, port: int, case: str, run_dir: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from seqgan_kit import distributed
    from seqgan_kit.train.runner import train

    counts = {"grad_bytes": 0, "grad_allreduces": 0, "other_collectives": 0}

    def counting_hook(state, bucket):
        counts["grad_bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
        counts["grad_allreduces"] += 1
        tensor = bucket.buffer().div_(dist.get_world_size())
        return dist.all_reduce(tensor, async_op=True).get_future().then(lambda f: f.value()[0])

    real_wrap, real_collective = distributed.Ranks.wrap, distributed.Ranks._collective

    def wrap(self, module, find_unused_parameters=False):
        wrapped = real_wrap(self, module, find_unused_parameters)
        if wrapped._ddp is not None:
            wrapped._ddp.register_comm_hook(None, counting_hook)
        return wrapped

    def collective(self, op, *args, **kwargs):
        counts["other_collectives"] += 1
        return real_collective(self, op, *args, **kwargs)

    distributed.Ranks.wrap, distributed.Ranks._collective = wrap, collective
    recipe, overrides = overrides_of(case)
    train(recipe, overrides, run_dir=run_dir)
    if rank == 0:
        Path(out).write_text(json.dumps(counts))


def _latency_rank(rank: int, world: int, port: int, out: str) -> None:
    """Median wall time of a gloo all-reduce of 8 bytes and of 1.33 MB (an LSTM generator's gradients)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    result = {}
    for name, numel in (("8 B", 2), ("1.33 MB", 333_000)):
        t = torch.ones(numel)
        times = []
        for i in range(220):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            if i >= 20:
                times.append(time.perf_counter() - t0)
        result[name] = statistics.median(times)
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def collective_latency(tmp: Path) -> dict[str, float]:
    out = tmp / "latency.json"
    mp.spawn(_latency_rank, args=(2, free_port(), str(out)), nprocs=2)
    return json.loads(out.read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one_process(case: str, run_dir: Path, threads: int, steps: int | None = None) -> None:
    from seqgan_kit.train.runner import train

    recipe, overrides = overrides_of(case, steps)
    train(recipe, overrides, run_dir=str(run_dir), threads=threads)


class FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of every op that ``torch.utils.flop_counter`` has a formula for (matmuls,
    convolutions, attention), like its ``FlopCounterMode`` but without the per-module tracking (whose hooks fail
    on MaskGAN's expanded ``<missing>`` parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(case: str, tmp: Path) -> float:
    """FLOPs per step of the main phase, its evaluation included: (run of S steps - run of 0 steps) / S."""
    totals = []
    for steps in (0, CASES[case][4]):
        with FlopCount() as counter:
            run_one_process(case, tmp / f"{case}_flops_{steps}", threads=2, steps=steps)
        totals.append(counter.total)
    return (totals[1] - totals[0]) / CASES[case][4]


def ring_seconds(nbytes: float, allreduces: float, world: int, alpha: float, beta: float) -> float:
    """Alpha-beta time of ``allreduces`` ring all-reduces moving ``nbytes`` in total over ``world`` ranks."""
    return allreduces * 2 * (world - 1) * alpha + 2 * (world - 1) / world * nbytes / beta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats of each configuration")
    ap.add_argument("--latency-only", action="store_true", help="only time gloo all-reduces between 2 ranks")
    ap.add_argument("--json", help="also append the results here (one JSON object per case)")
    args = ap.parse_args()
    cases = args.cases.split(",")
    import seqgan_kit.runs.rundir as rundir

    rundir.RunDir.plot = lambda self: None  # curves are not under test; drawing them would add to every step
    load = os.getloadavg()
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs, torch "
          f"{torch.__version__}; load average before {load[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        latency = collective_latency(Path(tmp))
        print("gloo all-reduce between 2 ranks on this machine (median of 200): "
              + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in latency.items()), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"case": "gloo_allreduce_latency_s", **latency}) + "\n")
        for case in ([] if args.latency_only else cases):
            one, two, counts = [], [], None
            steps = 0
            for rep in range(args.repeats):
                d1 = Path(tmp) / f"{case}_1x2_{rep}"
                run_one_process(case, d1, threads=2)
                one += step_times(d1, CASES[case][2])
                d2, out = Path(tmp) / f"{case}_2x1_{rep}", Path(tmp) / f"{case}_{rep}.json"
                mp.spawn(_rank, args=(2, free_port(), case, str(d2), str(out)), nprocs=2)
                two += step_times(d2, CASES[case][2])
                counts = json.loads(out.read_text())
                recs = [json.loads(line) for line in (d2 / "metrics.jsonl").read_text().splitlines()]
                steps = max(r.get("step", r.get("epoch", 0)) for r in recs if r["phase"] == CASES[case][2])
            flops = count_flops(case, Path(tmp))
            row = {"case": case, "recipe": CASES[case][0], "s_per_step_1x2": statistics.median(one),
                   "s_per_step_2x1": statistics.median(two), "steps_timed": [len(one), len(two)],
                   "grad_bytes_per_step": counts["grad_bytes"] / steps,
                   "grad_allreduces_per_step": counts["grad_allreduces"] / steps,
                   "other_collectives_per_step": counts["other_collectives"] / steps,
                   "flops_per_step": flops}
            for link, (alpha, beta) in LINKS.items():
                comm = ring_seconds(row["grad_bytes_per_step"], row["grad_allreduces_per_step"]
                                    + row["other_collectives_per_step"], 8, alpha, beta)
                row[f"comm_s_8gpu_{link}"] = comm
                for rate in GPU_RATES:
                    compute = flops / rate / 8
                    row[f"efficiency_8gpu_{link}_{rate / 1e12:g}TF"] = compute / (compute + comm)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:  # one line per case as it ends, so a later failure loses nothing
                with open(args.json, "a") as f:
                    f.write(json.dumps({**row, "machine": platform.platform(), "cpus": os.cpu_count()}) + "\n")
    load = os.getloadavg()
    print(f"\nload average after {load[0]:.2f}")
    print("| case | s/step 1x2 | s/step 2x1 | 2x1 / 1x2 | grad MB/step | all-reduces/step | other collectives/step "
          "| GFLOP/step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['s_per_step_1x2']:.3f} | {r['s_per_step_2x1']:.3f} | "
              f"{r['s_per_step_2x1'] / r['s_per_step_1x2']:.2f} | {r['grad_bytes_per_step'] / 1e6:.2f} | "
              f"{r['grad_allreduces_per_step']:.1f} | {r['other_collectives_per_step']:.1f} | "
              f"{r['flops_per_step'] / 1e9:.2f} |")
    print("\nProjected 8-GPU efficiency (from the FLOP count; compute/8 / (compute/8 + ring all-reduce), no overlap):")
    heads = [f"{link} @ {rate / 1e12:g} TFLOP/s" for link in LINKS for rate in GPU_RATES]
    print("| case | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for r in rows:
        cells = [f"{r[f'efficiency_8gpu_{link}_{rate / 1e12:g}TF']:.2f}" for link in LINKS for rate in GPU_RATES]
        print(f"| {r['case']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
