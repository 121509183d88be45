"""Why does Skip-Thought collapse on Obama? Train variants for a fixed number of steps and measure the encoder.

    SEQGAN_KIT_DATA=/work/shared/corpora python eval/skipthought_diagnosis.py --recipe recipes/obama_skipthought.toml \
        --steps 150 --every 50 --label base [--set skipthought.lr=2e-4 ...] [--max-unit-len 30] \
        [--torch-init] --out eval/results/encoders_skipthought_init.jsonl

Each variant is the run's own trainer (:class:`SkipThoughtTrainer`, the recipe plus ``--set`` overrides) driven
step by step on one thread; every ``--every`` steps it measures, on up to 600 held-out units and triples:

- ``mean_cos``: mean pairwise cosine of the L2-normalised sentence vectors (what the encoder returns);
- ``top_pc``: share of the centred vectors' variance in the first principal component;
- ``centred_norm``: mean distance of an unnormalised vector to the mean vector, over the mean vector's norm
  (small: every sentence gets almost the same vector);
- ``saturated``: share of unnormalised entries with ``|h| > 0.99`` (the GRU's tanh range is (-1, 1));
- ``retrieval``: share of held-out triples whose true next unit has the highest cosine with the current unit
  among 10 candidates (9 other held-out units drawn uniformly, seeded);
- ``loss`` and ``loss_shuffled``: held-out per-token cross-entropy of both decoders with the true sentence
  vector and with the batch's sentence vectors permuted (the gap is what the decoders take from the encoder).

``--max-unit-len N`` drops training triples with a unit longer than N tokens (the original's ``maxlen_w`` rule);
``--torch-init`` replaces the orthogonal / U(-0.1, 0.1) initialisation by PyTorch's defaults. One JSON line
per measurement goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqgan_kit.data.corpus import row_lengths  # noqa: E402
from seqgan_kit.runs.rundir import RunDir  # noqa: E402
from seqgan_kit.train.experiment import Experiment  # noqa: E402
from seqgan_kit.train.recipe import load_recipe  # noqa: E402
from seqgan_kit.train.skipthought import SkipThoughtTrainer  # noqa: E402

K = 10
N_EVAL = 600
N_LOSS = 256


def encode_all(model, units: torch.Tensor) -> torch.Tensor:
    """Unnormalised vectors ``[U, C]`` of unit rows ``[U, T]``, encoded in length-sorted batches of 256."""
    lengths = row_lengths(units)  # [U]
    order = torch.argsort(lengths, descending=True)
    out = torch.empty(len(units), model.out_dim, dtype=torch.float64)
    for lo in range(0, len(units), 256):
        idx = order[lo:lo + 256]
        width = int(lengths[idx].max()) + 1
        out[idx] = model.encode(units[idx, :width], normalize=False).double()
    return out


@torch.no_grad()
def measure(tr: SkipThoughtTrainer, eval_idx: torch.Tensor, triples: torch.Tensor, cands: torch.Tensor) -> dict:
    model = tr.model.eval()
    h_all = encode_all(model, tr.test_units)  # [U, C]
    h = h_all[eval_idx]  # [N, C]
    v = torch.nn.functional.normalize(h, dim=1)
    n = len(v)
    cos = v @ v.T  # [N, N]
    mean_cos = float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1)))
    centred = v - v.mean(0)
    s = torch.linalg.svdvals(centred) ** 2
    mu = h.mean(0)
    out = {"mean_cos": mean_cos, "top_pc": float(s[0] / s.sum()),
           "centred_norm": float((h - mu).norm(dim=1).mean() / mu.norm()),
           "saturated": float((h.abs() > 0.99).double().mean())}
    for name, x in (("retrieval", h_all), ("retrieval_centred", h_all - mu)):
        x = torch.nn.functional.normalize(x, dim=1)
        q = x[triples[:, 1]]  # [M, C]
        c = x[cands]  # [M, K, C]; candidate 0 is the true next unit
        scores = (c @ q[:, :, None])[:, :, 0]  # [M, K]
        out[name] = float((scores.argmax(1) == 0).double().mean())
    total = shuffled = 0.0
    tokens = 0
    g = torch.Generator().manual_seed(0)
    for lo in range(0, N_LOSS, 128):
        prev, cur, nxt = tr.batch(tr.test_units, tr.test_triples[lo:lo + 128])
        ctx = model.encode(cur, normalize=False)
        perm = torch.randperm(len(ctx), generator=g)
        for which, x in ((0, ctx), (1, ctx[perm])):
            lp, n_p = model._decode_loss(model.decoder_prev, x, prev)
            ln, n_n = model._decode_loss(model.decoder_next, x, nxt)
            if which == 0:
                total += float(lp + ln)
                tokens += n_p + n_n
            else:
                shuffled += float(lp + ln)
    out["loss"] = total / tokens
    out["loss_shuffled"] = shuffled / tokens
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", required=True)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--label", required=True)
    p.add_argument("--max-unit-len", type=int, default=0)
    p.add_argument("--torch-init", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_recipe(args.recipe, args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.make()
        exp = Experiment(cfg, run, torch.device("cpu"), build_generator=False)
        tr = SkipThoughtTrainer(exp)
    if args.torch_init:
        torch.manual_seed(cfg.seed)
        for m in tr.model.modules():
            if m is not tr.model and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    if args.max_unit_len:
        lengths = row_lengths(tr.train_units)  # [U]
        keep = (lengths[tr.train_triples] <= args.max_unit_len).all(dim=1)
        tr.train_triples = tr.train_triples[keep]
    rng = np.random.default_rng(0)
    triples = tr.test_triples[:N_EVAL]
    n_units = len(tr.test_units)
    eval_idx = torch.from_numpy(rng.choice(n_units, size=min(N_EVAL, n_units), replace=False))
    cands = torch.empty(len(triples), K, dtype=torch.long)
    for i, (_, cur, nxt) in enumerate(triples.tolist()):
        pool = [u for u in rng.choice(n_units, size=K + 4, replace=False).tolist() if u not in (cur, nxt)]
        cands[i] = torch.tensor([nxt, *pool[:K - 1]])
    meta = {"label": args.label, "overrides": args.overrides, "max_unit_len": args.max_unit_len,
            "torch_init": args.torch_init, "train_triples": len(tr.train_triples),
            "params": sum(p.numel() for p in tr.model.parameters())}
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(tr.train_triples), generator=g)
    bs = tr.cfg.batch_size
    step, pos, losses, train_s = 0, 0, [], 0.0
    with args.out.open("a") as f:
        while True:
            if step % args.every == 0:
                rec = {**meta, "step": step, "train_loss": float(np.mean(losses)) if losses else None,
                       "train_s": round(train_s, 1), **measure(tr, eval_idx, triples, cands)}
                losses = []
                print(json.dumps(rec), flush=True)
                f.write(json.dumps(rec) + "\n")
                f.flush()
            if step >= args.steps:
                break
            if pos + bs > len(order):
                order, pos = torch.randperm(len(tr.train_triples), generator=g), 0
            t0 = time.perf_counter()
            losses.append(tr.step(tr.train_triples[order[pos:pos + bs]], 0))
            train_s += time.perf_counter() - t0
            pos += bs
            step += 1


if __name__ == "__main__":
    main()
