"""RankGAN's rank-score rewards: the batched computation beside the literal loop, in one run (CPU, one thread).

    python eval/bench_rank_reward.py [--batch 16] [--rollouts 2]

Both take greedy rollouts (temperature 0), so they compute the same numbers; the largest difference is printed
with the times. Sizes: the oracle's (vocabulary 5,000, length 20, generator 32/32) and the CPU recipe's
quarter-width ranker.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.ranker import CNNRanker
from seqgan_kit.rl.rank_reward import rank_rewards, reference_rank_rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rollouts", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = LSTMGenerator(vocab_size=5000, emb_dim=32, hidden_dim=32, seq_len=20)
    ranker = CNNRanker(5000, 20, 64, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20],
                       [25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40])
    seqs, refs = gen.sample(args.batch), torch.randint(5000, (16, 20))
    rank_rewards(gen, ranker, seqs[:2], refs, 1, temperature=0.0)  # warm-up (kernels, allocator)
    t = time.perf_counter()
    fast = rank_rewards(gen, ranker, seqs, refs, args.rollouts, temperature=0.0)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = reference_rank_rewards(gen, ranker, seqs, refs, args.rollouts, temperature=0.0)
    slow_s = time.perf_counter() - t
    print(json.dumps({"batch": args.batch, "rollouts": args.rollouts, "batched_s": round(fast_s, 3),
                      "reference_s": round(slow_s, 3), "speedup": round(slow_s / fast_s, 1),
                      "max_abs_diff": float((fast.double() - slow).abs().max()),
                      "load_average_1_5_15": os.getloadavg(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
