"""runs/tracking.py: TensorBoard event files, the end-of-run summary, one-line errors for missing extras, plots."""

import builtins
import json

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.errors import UserError, require_extra
from seqgan_kit.runs.plots import plot_curves
from seqgan_kit.runs.tracking import run_summary
from seqgan_kit.train.runner import train

from .tiny import RECIPE, TINY

TB = 'runtime.report_to=["tensorboard"]'


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_tensorboard_gets_every_metric_and_samples_and_changes_no_result(tmp_path):
    pytest.importorskip("tensorboard")
    overrides = [*TINY, "mle.epochs=2", "device=cpu"]
    train(RECIPE, overrides, run_dir=str(tmp_path / "plain"))
    train(RECIPE, [*overrides, TB], run_dir=str(tmp_path / "tb"))
    plain, tracked = (load_file(str(tmp_path / d / "checkpoint.safetensors")) for d in ("plain", "tb"))
    assert plain.keys() == tracked.keys() and all(torch.equal(plain[k], tracked[k]) for k in plain)
    assert not (tmp_path / "plain" / "tensorboard").exists()
    records = [json.loads(line) for line in (tmp_path / "tb" / "metrics.jsonl").read_text().splitlines()]
    acc = _events(tmp_path / "tb")
    assert set(acc.Tags()["scalars"]) == {"pretrain_g/nll_oracle", "pretrain_g/nll_test", "pretrain_g/train_loss"}
    nll = [(e.step, e.value) for e in acc.Scalars("pretrain_g/nll_oracle")]
    assert nll == [(r["epoch"], pytest.approx(r["nll_oracle"], rel=1e-6)) for r in records]
    texts = acc.Tensors("pretrain_g/samples/text_summary")
    assert [t.step for t in texts] == [0, 1, 2]
    lines = texts[-1].tensor_proto.string_val[0].decode().splitlines()
    assert len(lines) == 8 and all(len(line.split()) == 6 for line in lines)  # 8 samples of 6 token ids


def test_an_unknown_tracker_or_a_missing_extra_is_one_line(tmp_path, monkeypatch, capsys):
    from seqgan_kit.cli import main

    assert main(["train", RECIPE, "--set", 'runtime.report_to=["wandb"]', "--run-dir", str(tmp_path / "r")]) == 2
    assert "runtime.report_to: unknown tracker 'wandb' (known: tensorboard)" in capsys.readouterr().err
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    monkeypatch.delitem(__import__("sys").modules, "tensorboard", raising=False)
    assert main(["train", RECIPE, "--set", TB, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["seqgan-kit: error: runtime.report_to = [\"tensorboard\"] needs the optional package "
                   "'tensorboard': pip install 'seqgan-kit[tensorboard]'"]
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match=r"pip install 'seqgan-kit\[encoders\]'"):
        require_extra("no_such_module_here", "encoders", "word2vec")


def test_summary_gives_best_and_final_values_and_the_files(tmp_path):
    records = [{"phase": "pretrain_g", "epoch": 0, "nll_test": 3.0, "elapsed_s": 1.0},
               {"phase": "pretrain_g", "epoch": 1, "nll_test": 2.5, "train_loss": 2.9, "elapsed_s": 2.0},
               {"phase": "adversarial", "step": 5, "nll_test": 2.7, "bleu2": 0.41, "self_bleu2": 0.8,
                "g_loss_per_token": 0.3, "elapsed_s": 130.0},
               {"phase": "adversarial", "step": 10, "nll_test": 2.8, "bleu2": 0.39, "self_bleu2": 0.7,
                "g_loss_per_token": 0.2, "elapsed_s": 200.0}]
    (tmp_path / "metrics.jsonl").write_text("")
    text = run_summary(tmp_path, records, 61.0)
    lines = text.splitlines()
    assert lines[0] == f"summary of {tmp_path}  (wall time 61.0 s this session, 3.3 min of training in all)"
    assert "nll_test          final 2.8000 (adversarial step 10)   best 2.5000 (pretrain_g epoch 1)" in text
    assert "bleu2             final 0.3900 (adversarial step 10)   best 0.4100 (adversarial step 5)" in text
    self_bleu = [line for line in lines if "self_bleu2" in line]
    assert self_bleu == ["  self_bleu2        final 0.7000 (adversarial step 10)"]
    assert lines[-1] == "  files: metrics.jsonl (0 B)"


def test_plots_skip_single_point_series(tmp_path):
    plot_curves([{"phase": "word2vec", "epoch": 5, "loss_per_token": 2.0}], tmp_path / "one.png")
    assert not (tmp_path / "one.png").exists()
    plot_curves([{"phase": "p", "epoch": 0, "a": 1.0}, {"phase": "p", "epoch": 1, "a": 0.5, "b": 3.0}],
                tmp_path / "two.png")
    assert (tmp_path / "two.png").stat().st_size > 1000
