"""Dump an encoder run's corpus splits as text: test.txt (all), test2000.txt (first 2000), train2000_s{k}.txt
(seeded draws)."""
import random
import sys
from pathlib import Path

from seqgan_kit.data.corpus import load_lines
from seqgan_kit.encoders.loading import load_encoder

enc = load_encoder(sys.argv[1])
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
train, test = load_lines(enc.cfg.data, enc.cfg.seed)
train = [t for t in train if t.strip()]
test = [t for t in test if t.strip()]
print(len(train), len(test))
(out / "test.txt").write_text("\n".join(test) + "\n")
(out / "test2000.txt").write_text("\n".join(test[:2000]) + "\n")
for k in (0, 1):
    draw = random.Random(k).sample(train, 2000)
    (out / f"train2000_s{k}.txt").write_text("\n".join(draw) + "\n")
