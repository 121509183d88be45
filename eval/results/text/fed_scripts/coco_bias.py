"""Small-n bias of FED for the COCO word2vec-SIF encoder, same protocol as eval/encoders_checks.py item 3:
n training sentences (3 seeded draws for n < 5000) against 5,000 other training sentences.

    python coco_bias.py ENCODER_RUN OUT.json     # e.g. runs/enc/coco_word2vec runs/fed/coco/bias.json
"""
import json
import random
import sys

import numpy as np

from seqgan_kit.encoders.loading import load_encoder
from seqgan_kit.metrics.embedding import fed

enc = load_encoder(sys.argv[1], pooling="sif")
train = enc.training_sentences()
r = random.Random(1609)
order = list(range(len(train)))
r.shuffle(order)
ref = [train[i] for i in order[:5000]]
rest = [train[i] for i in order[5000:]]
ref_x = enc.embed(ref)
out = []
for n in (500, 1000, 2000, 5000):
    vals = [fed(ref_x, enc.embed(random.Random(f"bias{n}{rep}").sample(rest, min(n, len(rest)))))
            for rep in range(3 if n < 5000 else 1)]
    out.append({"n": n, "mean": float(np.mean(vals)), "sd": float(np.std(vals)), "values": vals})
    print(out[-1])
json.dump({"encoder": enc.describe(), "n_ref": len(ref), "bias": out}, open(sys.argv[2], "w"), indent=1)
