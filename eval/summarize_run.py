"""Print a run directory's metrics.jsonl as a markdown table (for eval/results/*.md).

    python eval/summarize_run.py RUN_DIR [--metrics nll_oracle nll_test train_loss]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--metrics", nargs="+", default=["nll_oracle", "nll_test", "train_loss"])
    args = ap.parse_args()
    lines = (args.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    print("| phase | epoch/step | " + " | ".join(args.metrics) + " | elapsed (s) |")
    print("|---|---:|" + "---:|" * len(args.metrics) + "---:|")
    for r in records:
        unit = r.get("epoch", r.get("step", ""))
        cells = [f"{r[m]:.4f}" if m in r else "" for m in args.metrics]
        print(f"| {r['phase']} | {unit} | " + " | ".join(cells) + f" | {r.get('elapsed_s', 0):.0f} |")


if __name__ == "__main__":
    main()
