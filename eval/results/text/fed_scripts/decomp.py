"""FED = mean term + trace terms - 2 Tr sqrt(S_r S_g): the two parts, for COCO/Obama references vs several sets."""
import json
import random
import sys

import numpy as np
import scipy.linalg

from seqgan_kit.data.corpus import load_lines
from seqgan_kit.encoders.loading import load_encoder
from seqgan_kit.metrics.embedding import fed
from seqgan_kit.runs.textmodel import TextModel

run, enc_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
enc = load_encoder(enc_dir)
train, test = load_lines(enc.cfg.data, enc.cfg.seed)
xr = enc.embed(test)


def parts(x):
    m = float(((xr.mean(0) - x.mean(0)) ** 2).sum())
    s1, s2 = np.cov(xr, rowvar=False), np.cov(x, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    cov = float(np.trace(s1) + np.trace(s2) - 2 * np.trace(root))
    return {"fed": fed(xr, x), "mean_term": m, "cov_term": cov, "trace_S": float(np.trace(s2))}


res = {"ref_trace_S": float(np.trace(np.cov(xr, rowvar=False))), "n_ref": len(test), "rows": {}}
res["rows"]["train (2000 drawn, seed 0)"] = parts(enc.embed(random.Random(0).sample(train, 2000)))
for label, path in (("MLE", f"{run}/generator_mle_best.safetensors"), ("SeqGAN", run)):
    model = TextModel.load(path)
    for t in (0.5, 1.0, 1.5):
        res["rows"][f"{label} T={t}"] = parts(enc.embed(model.sample_text(2000, temperature=t, seed=0)))
print("ref trace", res["ref_trace_S"])
for k, v in res["rows"].items():
    print(f"{k:28s} " + "  ".join(f"{a} {b:.5f}" for a, b in v.items()))
json.dump(res, open(out, "w"), indent=1)
