"""SeqGAN's BLEU-n minus the MLE curve's BLEU-n at the same Self-BLEU-n (linear interpolation between MLE's
neighbouring temperature points; None outside MLE's range)."""
import json
import sys

sw = json.load(open(sys.argv[1]))
runs = list(sw["runs"])
mle = [r for r in runs if r.endswith("mle_best.safetensors")][0]
gan = [r for r in runs if r != mle][0]
for o in map(str, sw["orders"]):
    pts = sorted((r["self_bleu"][o], r["bleu"][o]) for r in sw["runs"][mle])
    row = []
    for r in sw["runs"][gan]:
        s, b = r["self_bleu"][o], r["bleu"][o]
        d = None
        for (s0, b0), (s1, b1) in zip(pts, pts[1:], strict=False):
            if s0 <= s <= s1:
                d = b - (b0 + (s - s0) / (s1 - s0) * (b1 - b0))
        row.append(f"T={r['temperature']:g}: " + ("outside" if d is None else f"{d:+.4f}"))
    print(f"BLEU-{o}:", "; ".join(row))
