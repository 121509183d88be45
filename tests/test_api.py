"""The Python API (seqgan_kit.train / load / metrics), and the README's example run as it is written there."""

import re
from pathlib import Path

import pytest
import torch

import seqgan_kit
from seqgan_kit.api import override_strings
from seqgan_kit.errors import UserError

from .tiny import TINY

README = Path(__file__).resolve().parents[1] / "README.md"
README_TRAIN = 'overrides={"mle.epochs": 10}'


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def tiny_overrides() -> str:
    items = [o.split("=", 1) for o in [*TINY, "mle.epochs=2"]]
    return "overrides=[" + ", ".join(repr(f"{k}={v}") for k, v in items) + "]"


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert README_TRAIN in code  # the line the test shrinks: keep them in step
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace(README_TRAIN, tiny_overrides()), str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "summary of runs/api_demo" in out and "torch.Size([4, 6])" in out
    assert (tmp_path / "runs" / "api_demo" / "checkpoint.safetensors").is_file()


@pytest.mark.slow
def test_train_and_load_give_the_cli_run(tmp_path, capsys):
    from seqgan_kit.cli import main

    run = seqgan_kit.train("synthetic_mle", overrides=[*TINY, "mle.epochs=1"], run_dir=tmp_path / "api")
    args = [a for o in [*TINY, "mle.epochs=1"] for a in ("--set", o)]
    assert main(["train", "synthetic_mle", *args, "--run-dir", str(tmp_path / "cli")]) == 0
    cli = seqgan_kit.load(tmp_path / "cli")
    assert [r["nll_oracle"] for r in run.metrics] == [r["nll_oracle"] for r in cli.metrics]
    assert torch.equal(run.sample(5, seed=3), cli.sample(5, seed=3))
    out = tmp_path / "s.txt"
    assert main(["sample", str(tmp_path / "cli"), "-n", "5", "--seed", "3", "--out", str(out)]) == 0
    assert run.sample(5, seed=3).tolist() == [list(map(int, line.split())) for line in out.read_text().splitlines()]
    ids = run.sample(64, seed=0)
    assert run.nll(ids) == pytest.approx(run.nll(ids.tolist()))
    with pytest.raises(UserError, match="token ids must lie in"):
        run.nll([[0, 1, 2, 3, 4, 40]])
    with pytest.raises(UserError, match="no in-filler|MaskGAN|infill|fill"):
        run.fill("1 ___ 3")
    with pytest.raises(UserError, match="no tokenizer"):
        run.text_model  # noqa: B018


def test_overrides_as_a_mapping_become_set_strings():
    from seqgan_kit.config import parse_override

    given = {"mle.epochs": 3, "mle.lr": 0.5, "data.card": "obama_speech", "eval.on": True, "data.bleu_orders": [2, 3]}
    strings = override_strings(given)
    assert strings[:4] == ["mle.epochs=3", "mle.lr=0.5", 'data.card="obama_speech"', "eval.on=true"]
    assert {k: v.value for k, v in map(parse_override, strings)} == given
    assert override_strings(["mle.epochs=3"]) == ["mle.epochs=3"]
    with pytest.raises(UserError):
        override_strings("mle.epochs=3")


def test_metrics_are_reexported_and_a_bad_run_is_one_error(tmp_path):
    from seqgan_kit.metrics import bleu, fed, self_bleu

    hyps = [["a", "b", "c"], ["a", "b", "d"]]
    assert bleu(hyps, hyps, orders=[2])[2] == pytest.approx(1.0)
    assert 0 < self_bleu(hyps, orders=[2])[2] < 1
    assert callable(fed) and callable(seqgan_kit.train)
    with pytest.raises(UserError):
        seqgan_kit.load(tmp_path)
