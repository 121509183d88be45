"""How much of a MaskGAN text run's in-filling is memorised: masked perplexity on training and on held-out rows.

    python eval/maskmle_generalisation.py CHECKPOINT --train FILE --test FILE [-n 1000] [--rate 0.5]
        [--mask contiguous|random] [--seed 0] [--json OUT]

For ``-n`` sentences drawn (seeded) from each file, masks drawn by the training rule (inside each sentence,
``maskgan.is_present_rate`` = ``--rate``), in eval mode: the in-filler's teacher-forced perplexity at the masked
positions, the wrapped pretraining LM's at the same positions (left context only, EOS banned as for the
in-filler), and the LM's mean per-token NLL over every real position. A large train/held-out gap in the LM's
columns says the LM the in-filler starts from has memorised its training sentences.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from seqgan_kit.metrics.infill import masked_nll
from seqgan_kit.models.masks import STRATEGIES, fillable_lengths, make_present
from seqgan_kit.runs.textmodel import TextModel


def rows_of(model: TextModel, path: str, n: int, seed: int) -> torch.Tensor:
    """``[min(n, S), T]`` encoded rows of ``n`` sentences of ``path`` (seeded draw of the ``S`` non-empty ones)."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    order = torch.randperm(len(lines), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return model.encode([lines[i] for i in order])


def measure(model: TextModel, rows: torch.Tensor, rate: float, strategy: str, seed: int) -> dict[str, float]:
    gen = model.generator
    present = make_present(fillable_lengths(rows, gen.eos_token), rows.shape[1], rate, strategy,
                           torch.Generator().manual_seed(seed + 1))  # [N, T]
    with torch.no_grad():
        infill, count = masked_nll(gen.teacher_forced(rows, present), rows, present)
        lm_logits = gen.lm(rows)  # [N, T, V]
        lm, _ = masked_nll(lm_logits + gen.fill_bias, rows, present)
        real = rows != gen.pad_token  # [N, T]: the tokens and EOS
        every = torch.nn.functional.cross_entropy(lm_logits[real], rows[real])
    return {"rows": len(rows), "masked_tokens": count, "masked_ppl": math.exp(infill / count),
            "lm_masked_ppl": math.exp(lm / count), "lm_nll_per_token": float(every)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--mask", choices=STRATEGIES, default="contiguous")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    if args.n < 1 or not 0 <= args.rate < 1:
        ap.error("-n must be positive and --rate in [0, 1)")
    torch.set_num_threads(1)
    model = TextModel.load(args.checkpoint)
    model.generator.eval()
    if not hasattr(model.generator, "teacher_forced"):
        ap.error(f"{args.checkpoint} holds no MaskGAN in-filler")
    out = {split: measure(model, rows_of(model, path, args.n, args.seed), args.rate, args.mask, args.seed)
           for split, path in (("train", args.train), ("test", args.test))}
    for split, r in out.items():
        print(f"{split:<5} rows {r['rows']:>5}  masked tokens {r['masked_tokens']:>6}  in-filler masked ppl "
              f"{r['masked_ppl']:8.2f}  LM masked ppl {r['lm_masked_ppl']:8.2f}  "
              f"LM NLL/token {r['lm_nll_per_token']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, **vars(args), **out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
