"""FED spread over sampling seeds: for each model and temperature, FED of n samples (seeds 0..S-1) against the
test split (the sweep's references), with the encoder the sweep used. Writes JSON to argv[4]."""
import json
import sys

import numpy as np

from seqgan_kit.data.corpus import load_lines
from seqgan_kit.encoders.loading import load_encoder
from seqgan_kit.metrics.embedding import fed
from seqgan_kit.runs.textmodel import TextModel

run, enc_dir, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
temps = [float(t) for t in sys.argv[5].split(",")]
seeds = range(int(sys.argv[6]))
enc = load_encoder(enc_dir)
refs = load_lines(enc.cfg.data, enc.cfg.seed)[int(sys.argv[7]) if len(sys.argv) > 7 else 1]
x_ref = enc.embed(refs)
res = {"refs": "train" if len(sys.argv) > 7 and sys.argv[7] == "0" else "test", "run": run,
       "encoder": enc.describe(), "n": n, "n_ref": len(refs), "models": {}}
for label, path in (("mle_best", f"{run}/generator_mle_best.safetensors"), ("seqgan", run)):
    model = TextModel.load(path)
    res["models"][label] = {}
    for t in temps:
        vals = [fed(x_ref, enc.embed(model.sample_text(n, temperature=t, seed=s))) for s in seeds]
        res["models"][label][str(t)] = {"values": vals, "mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1))}
        print(label, t, f"mean {np.mean(vals):.6f} sd {np.std(vals, ddof=1):.6f}", [round(v, 6) for v in vals],
              flush=True)
json.dump(res, open(out, "w"), indent=1)
