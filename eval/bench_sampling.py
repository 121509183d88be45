"""Time the exact categorical samplers of seqgan_kit.models.sampling side by side, at the generator's sizes.

    python eval/bench_sampling.py [--rows 4096] [--vocab 5000] [--repeats 7] [--json]

Each sampler draws one token per row from softmax(logits); all three sample the same distribution (tests/
test_sampling.py checks each against the softmax). The table gives the median time per call and the ratio to
the fastest; a second table times a whole `Generator.sample` of 9,984 sequences of length 20 with each sampler.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.sampling import SAMPLERS, sample_categorical


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    logits = torch.randn(args.rows, args.vocab) * 2
    gen = torch.Generator().manual_seed(0)
    step = {m: median_ms(lambda m=m: sample_categorical(logits, 1.0, gen, m), args.repeats) for m in SAMPLERS}
    model = LSTMGenerator(args.vocab, 32, 32, 20)
    full = {m: median_ms(lambda m=m: model.sample(9984, generator=gen, batch_size=512, method=m), 3)
            for m in SAMPLERS}
    best = min(step, key=step.get)
    if args.json:
        print(json.dumps({"step_ms": step, "sample_9984_ms": full, "fastest": best}))
        return
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"\none draw per row, logits [{args.rows}, {args.vocab}] (median of {args.repeats})")
    print(f"{'sampler':<14}{'ms/call':>10}{'vs fastest':>12}")
    for m, ms in sorted(step.items(), key=lambda kv: kv[1]):
        print(f"{m:<14}{ms:>10.1f}{ms / step[best]:>11.2f}x")
    print(f"\nGenerator.sample(9984) at V={args.vocab}, emb/hidden 32, T=20 (median of 3)")
    print(f"{'sampler':<14}{'ms':>10}{'vs fastest':>12}")
    fbest = min(full.values())
    for m, ms in sorted(full.items(), key=lambda kv: kv[1]):
        print(f"{m:<14}{ms:>10.1f}{ms / fbest:>11.2f}x")


if __name__ == "__main__":
    main()
