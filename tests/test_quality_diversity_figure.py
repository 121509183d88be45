"""eval/quality_diversity_figure.py: sweeps merged only when comparable, gaps to the baseline curve by hand."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "eval" / "quality_diversity_figure.py"


def _module():
    spec = importlib.util.spec_from_file_location("quality_diversity_figure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rec(t, bleu, self_bleu, **extra):
    return {"temperature": t, "bleu": {"2": bleu}, "self_bleu": {"2": self_bleu}, **extra}


def _sweep(runs, first="runs/a", n=100):
    return {"runs": runs, "corpus": "c", "orders": [2], "temperatures": [0.5, 1.0], "n": n,
            "self_bleu_samples": n, "seed": 0, "references": {"source": f"test split of {first}", "n": 50}}


def test_merged_sweeps_give_each_point_its_gap_to_the_first_runs_curve(tmp_path):
    qd = _module()
    mle = [_rec(0.5, 0.80, 0.90), _rec(1.0, 0.60, 0.50, fed=0.01, mean_len=10.0)]
    gan = [_rec(0.5, 0.70, 0.95), _rec(1.0, 0.75, 0.70, mean_len=9.0)]
    merged = qd.merge([_sweep({"MLE": mle}), _sweep({"GAN": gan}, first="runs/b")], ["one", "two"])
    assert list(merged["runs"]) == ["MLE", "GAN"]  # another first run's test split: the same references
    fixed = {"theirs": {"bleu": {"2": 0.65}, "self_bleu": {"2": 0.60}}}
    rows = {r["label"]: r for r in qd.rows_at(merged, fixed, 1.0)}
    # MLE's curve at Self-BLEU 0.70 is halfway between (0.50, 0.60) and (0.90, 0.80): 0.70
    assert rows["GAN"]["gap"]["2"] == pytest.approx(0.75 - 0.70)
    assert rows["theirs"]["gap"]["2"] == pytest.approx(0.65 - 0.65)
    assert rows["MLE"]["gap"]["2"] == pytest.approx(0.0) and rows["MLE"]["fed"] == 0.01
    table = qd.table(list(rows.values()) + [{**rows["GAN"], "label": "far", "gap": {"2": None}}], ["2"], "MLE")
    assert "| GAN | 1 | 0.750 | 0.700 | +0.050 |  | 9.0 |" in table and "| far |" in table and "outside" in table
    qd.figure(merged, fixed, tmp_path / "qd.png")
    assert (tmp_path / "qd.png").stat().st_size > 10_000


def test_sweeps_of_other_settings_or_a_repeated_run_are_refused():
    qd = _module()
    one = _sweep({"MLE": [_rec(1.0, 0.6, 0.5)]})
    with pytest.raises(SystemExit, match="n differs"):
        qd.merge([one, _sweep({"GAN": [_rec(1.0, 0.6, 0.5)]}, n=200)], ["one", "two"])
    with pytest.raises(SystemExit, match="already in an earlier sweep"):
        qd.merge([one, one], ["one", "two"])
