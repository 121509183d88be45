"""How much probability a text generator puts on EOS where real sentences go on (the early-ending diagnostic).

    python eval/eos_probe.py [LABEL=]CHECKPOINT [[LABEL=]CHECKPOINT ...] [--rows 3000] [--positions 2 4 6 8 10]

Teacher-forced on the first ``--rows`` test sentences of each run: the mean ``P(EOS | real prefix)`` over the
positions before a sentence's real EOS, at its real EOS, and at the chosen positions (non-final ones only).
A model that ends its samples too early shows a high value at the non-final positions.
"""

from __future__ import annotations

import argparse

import torch

from seqgan_kit.cli.sweep import split_label
from seqgan_kit.data.tokenization import EOS
from seqgan_kit.runs.textmodel import TextModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="[LABEL=]CHECKPOINT (a run directory or a checkpoint in one)")
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--positions", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| model | P(EOS) before the real EOS | P(EOS) at the real EOS | "
          + " | ".join(f"position {t}" for t in args.positions) + " |")
    print("|---|---:|---:|" + "---:|" * len(args.positions))
    for label, path in map(split_label, args.models):
        model = TextModel.load(path)
        gen = model.generator.eval()
        seqs = model.test_ids()[:args.rows]  # [B, T]
        with torch.no_grad():
            p_eos = torch.softmax(gen(seqs), dim=-1)[..., EOS]  # [B, T, V] -> [B, T]
        live = gen.token_mask(seqs)  # [B, T]: tokens up to and including EOS
        at_eos = live & (seqs == EOS)
        before = live & ~at_eos
        cells = [f"{float(p_eos[:, t][before[:, t]].mean()):.4f}" for t in args.positions]
        print(f"| {label or path} | {float(p_eos[before].mean()):.4f} | {float(p_eos[at_eos].mean()):.4f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
