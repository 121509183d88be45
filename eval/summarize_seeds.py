"""Mean ± sd over seeds of the evaluation rows of several runs of one recipe (for eval/results/*.md).

    python eval/summarize_seeds.py RUN_DIR [RUN_DIR ...] [--metrics nll_oracle nll_test]

For each run: its MLE-phase value at the epoch the later phases started from (the last ``pretrain_g`` row),
its value at the end (the last row), and its lowest value after MLE; then mean ± sample sd of each over the
runs (a missing value leaves its column blank).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def points(records: list[dict], metric: str) -> tuple[float | None, float | None, float | None]:
    """(end of MLE, end of run, lowest after MLE) of ``metric``."""
    mle = [r[metric] for r in records if r["phase"] == "pretrain_g" and metric in r]
    after = [r[metric] for r in records if r["phase"] != "pretrain_g" and metric in r]
    end = after[-1] if after else (mle[-1] if mle else None)
    return (mle[-1] if mle else None), end, (min(after) if after else None)


def spread(values: list[float], digits: int = 3) -> str:
    """``mean ± sample sd`` of ``values`` (sd 0 for one value); the eval scripts' one formatter."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--metrics", nargs="+", default=["nll_oracle", "nll_test"])
    args = ap.parse_args()
    columns = [f"{m} {what}" for m in args.metrics for what in ("end of MLE", "end", "lowest after MLE")]
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    table = []
    for run in args.runs:
        values = [v for m in args.metrics for v in points(rows(run), m)]
        table.append(values)
        print(f"| {run.name} | " + " | ".join("" if v is None else f"{v:.3f}" for v in values) + " |")
    columns_present = [[row[i] for row in table if row[i] is not None] for i in range(len(columns))]
    means = [spread(values) if values else "" for values in columns_present]
    print(f"| mean ± sd ({len(table)} runs) | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
