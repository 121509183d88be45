"""A killed run resumed from its checkpoint ends exactly like an uninterrupted one (CPU, same seed)."""

import json

import pytest

from seqgan_kit.train import mle
from seqgan_kit.train.runner import train

from .tiny import RECIPE, TINY, kill_on_call

pytestmark = pytest.mark.slow  # end-to-end training runs: outside the fast subset (-m "not slow")


def metrics_without_time(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


def test_resume_after_a_kill_matches_the_uninterrupted_run(tmp_path, monkeypatch):
    full = tmp_path / "full"
    train(RECIPE, TINY, run_dir=str(full))

    # Kill the second run in the middle of epoch 3, after epoch 2's metrics and checkpoint were written.
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, mle, "train_epoch", 3)
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, TINY, run_dir=str(killed))
    restore()
    assert [r["epoch"] for r in metrics_without_time(killed)] == [0, 1, 2]

    train(None, [], resume=str(killed))
    expected = metrics_without_time(full)
    assert [r["epoch"] for r in expected] == [0, 1, 2, 3, 4]
    assert metrics_without_time(killed) == expected
    assert (killed / "curves.png").stat().st_size > 1000
    assert (killed / "generator_mle.safetensors").exists()


def test_metrics_logged_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    train(RECIPE, TINY + ["mle.checkpoint_every=2"], run_dir=str(run))
    reference = metrics_without_time(run)
    # Pretend the process died after logging epoch 5 but before its checkpoint: a stale extra line.
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"phase": "pretrain_g", "epoch": 99, "nll_oracle": 0.0}) + "\n")
    train(None, [], resume=str(run))
    assert metrics_without_time(run) == reference


def test_training_really_changes_the_parameters_and_lowers_the_loss(tmp_path):
    run = tmp_path / "run"
    train(RECIPE, TINY + ["mle.epochs=6", "mle.lr=0.02"], run_dir=str(run))
    records = metrics_without_time(run)
    assert records[-1]["nll_test"] < records[0]["nll_test"] - 0.1
    assert records[-1]["nll_oracle"] < records[0]["nll_oracle"]
