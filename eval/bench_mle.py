"""Our MLE epoch against a bare PyTorch loop written here, same sizes, interleaved, side by side.

    python eval/bench_mle.py [--threads 1 2] [--repeats 5] [--textgan TEXTGAN_PYTORCH_DIR] [--json]

The bare loop is what a user would write with no toolkit: ``nn.Embedding -> nn.LSTM -> nn.Linear`` (with
bias), ``F.cross_entropy``, Adam, global-norm clip 5, a fresh permutation per epoch, batches by index. Ours is
``seqgan_kit.train.mle.train_epoch`` on an ``LSTMGenerator`` of the same sizes. Two cases: the SeqGAN paper's
synthetic task (vocab 5,000, length 20, emb/hidden 32, batch 64, 9,984 sequences = 156 batches) and the text
model's variable-length masking (EOS, PAD after it, PAD ignored by the loss; same sizes, random lengths).

Ours uses the toolkit's optimizer (``seqgan_kit.train.experiment.adam``: PyTorch's fused Adam); the bare loop
uses ``torch.optim.Adam`` as a user would, and a third column gives the bare loop with ``fused=True`` too, so
that the table shows where a difference comes from. Each repeat times one epoch of each implementation back to
back (the order rotates), so the machine's load affects all alike; the table gives medians and the ratios
``bare / ours`` (> 1: ours is faster).

``--textgan DIR`` adds a fourth column on the synthetic case: TextGAN-PyTorch's own MLE epoch, its code imported
from a checkout at DIR (williamSYSU/TextGAN-PyTorch; nothing of it is copied here): its ``LSTMGenerator``
(LogSoftmax output), its ``GenDataIter`` batches (a DataLoader of dicts, batch 64, its default order), its
instructor's ``train_gen_epoch`` (``NLLLoss``, Adam lr 0.01, global-norm clip 5), on the CPU.

Per precision (fp32 against bf16, each against the floor of its own measured GEMM rate): the same task in
``eval/bench_precision.py`` (results: ``eval/results/precision.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.train.experiment import adam
from seqgan_kit.train.mle import train_epoch

V, T, E, H, B, N = 5000, 20, 32, 32, 64, 9984
PAD, BOS, EOS = 0, 1, 2


class BareLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.proj = nn.Linear(H, V)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.proj(self.lstm(self.embedding(inputs))[0])  # [B, T, V]


def bare_epoch(model: BareLM, opt: torch.optim.Optimizer, data: torch.Tensor, start: int, ignore: int) -> float:
    order = torch.randperm(len(data))
    total = 0.0
    for lo in range(0, len(data), B):
        batch = data[order[lo:lo + B]]  # [b, T]
        inputs = torch.cat([torch.full((len(batch), 1), start), batch[:, :-1]], dim=1)  # [b, T]
        logits = model(inputs)  # [b, T, V]
        loss = F.cross_entropy(logits.reshape(-1, V), batch.reshape(-1), ignore_index=ignore)  # [b*T, V]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        total += loss.item()
    return total


def textgan_epoch(checkout: Path, data: torch.Tensor) -> Callable[[], float]:
    """One MLE epoch of TextGAN-PyTorch's oracle instructor over ``data [N, T]``, its code imported from
    ``checkout``."""
    sys.path.insert(0, str(checkout))
    import config as tg_cfg  # TextGAN-PyTorch's module of settings
    from instructor.oracle_data.instructor import BasicInstructor
    from models.generator import LSTMGenerator as TextGANGenerator
    from utils.data_loader import GenDataIter

    tg_cfg.CUDA = False
    if (tg_cfg.vocab_size, tg_cfg.max_seq_len, tg_cfg.gen_embed_dim, tg_cfg.gen_hidden_dim, tg_cfg.batch_size) != (
            V, T, E, H, B):
        raise SystemExit("the TextGAN-PyTorch checkout's defaults are not the SeqGAN sizes this bench uses")
    model = TextGANGenerator(E, H, V, T, tg_cfg.padding_idx)
    loader = GenDataIter(data).loader
    opt = torch.optim.Adam(model.parameters(), lr=tg_cfg.gen_lr)
    criterion = nn.NLLLoss()
    instructor = object.__new__(BasicInstructor)  # only its train_gen_epoch (and static optimize) run
    return lambda: instructor.train_gen_epoch(model, loader, criterion, opt)


def make_data(text: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if not text:
        return torch.randint(0, V, (N, T), generator=g)
    data = torch.randint(3, V, (N, T), generator=g)
    lengths = torch.randint(5, T, (N,), generator=g)  # EOS position
    data[torch.arange(N), lengths] = EOS
    data[torch.arange(T)[None, :] > lengths[:, None]] = PAD
    return data


def bench(threads: int, text: bool, repeats: int, textgan: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    data = make_data(text)
    ours = LSTMGenerator(V, E, H, T, start_token=BOS if text else 0, eos_token=EOS if text else None,
                         pad_token=PAD)
    bare, bare_fused = BareLM(), BareLM()
    opt_ours = adam(ours.parameters(), lr=0.01)  # what every trainer of the toolkit uses
    opt_bare = torch.optim.Adam(bare.parameters(), lr=0.01)
    opt_bare_fused = torch.optim.Adam(bare_fused.parameters(), lr=0.01, fused=True)
    rng = torch.Generator().manual_seed(1)
    start, ignore = BOS if text else 0, PAD if text else -100
    runs = {
        "ours": lambda: train_epoch(ours, opt_ours, data, B, 5.0, rng=rng),
        "bare": lambda: bare_epoch(bare, opt_bare, data, start, ignore),
        "bare_fused": lambda: bare_epoch(bare_fused, opt_bare_fused, data, start, ignore),
    }
    if textgan is not None and not text:
        runs["textgan"] = textgan_epoch(textgan, data)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for name in runs:  # warm-up
        runs[name]()
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"threads": threads, "case": "text (EOS/PAD masking)" if text else "synthetic", "ours_s": med["ours"],
            "bare_s": med["bare"], "bare_fused_s": med["bare_fused"], "ratio_bare_over_ours": med["bare"] / med["ours"],
            "ratio_bare_fused_over_ours": med["bare_fused"] / med["ours"],
            **({"textgan_s": med["textgan"], "ratio_textgan_over_ours": med["textgan"] / med["ours"]}
               if "textgan" in med else {}),
            **{f"{name}_all": t for name, t in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--textgan", type=Path, metavar="DIR", help="a TextGAN-PyTorch checkout: time its MLE epoch too")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.textgan is not None and not (args.textgan / "instructor" / "oracle_data" / "instructor.py").is_file():
        ap.error(f"--textgan {args.textgan}: not a TextGAN-PyTorch checkout (no instructor/oracle_data/instructor.py)")
    rows = [bench(t, text, args.repeats, args.textgan) for t in args.threads for text in (False, True)]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}")
    print(f"MLE epoch: V={V}, T={T}, emb/hidden {E}/{H}, batch {B}, {N} sequences; median of {args.repeats}, "
          f"interleaved\n")
    print(f"{'threads':>7}  {'case':<24}{'ours s':>9}{'bare s':>9}{'bare/ours':>11}{'bare+fused s':>14}"
          f"{'(bare+fused)/ours':>19}")
    for r in rows:
        print(f"{r['threads']:>7}  {r['case']:<24}{r['ours_s']:>9.2f}{r['bare_s']:>9.2f}"
              f"{r['ratio_bare_over_ours']:>10.2f}x{r['bare_fused_s']:>14.2f}{r['ratio_bare_fused_over_ours']:>18.2f}x"
              + (f"   TextGAN-PyTorch {r['textgan_s']:.2f} s, {r['ratio_textgan_over_ours']:.2f}x" if "textgan_s" in r
                 else ""))


if __name__ == "__main__":
    main()
