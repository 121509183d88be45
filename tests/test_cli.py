import json
import subprocess
import sys

import numpy as np
import pytest

from seqgan_kit.cli import main

from .tiny import RECIPE, TINY


def set_args(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", RECIPE, *set_args(TINY + ["mle.epochs=2"]), "--run-dir", str(run)]) == 0
    return run


def test_train_writes_a_complete_run_directory(tiny_run):
    for name in ["config.toml", "run.json", "metrics.jsonl", "curves.png", "checkpoint.safetensors",
                 "generator_mle.safetensors"]:
        assert (tiny_run / name).exists(), name
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert all(r["phase"] == "pretrain_g" and "nll_oracle" in r and "nll_test" in r for r in records)
    assert json.loads((tiny_run / "run.json").read_text())["seed"] == 0
    assert "vocab_size = 40" in (tiny_run / "config.toml").read_text()


def test_sample_then_score_with_the_oracle(tiny_run, tmp_path, capsys):
    out = tmp_path / "samples.txt"
    assert main(["sample", str(tiny_run), "-n", "50", "--out", str(out), "--seed", "3"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 50 and all(len(line.split()) == 6 for line in lines)
    assert all(0 <= int(t) < 40 for line in lines for t in line.split())
    assert main(["sample", str(tiny_run / "generator_mle.safetensors"), "-n", "4", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out.splitlines()
    assert len(greedy) == 4 and len(set(greedy)) == 1  # greedy decoding: all the same

    # The run's random oracle (seed 88, vocab 40, emb/hidden 8) scores the samples.
    args = ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "40", "--emb-dim", "8", "--hidden-dim", "8",
            "--samples", str(out), "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_sequences"] == 50 and 0 < result["nll_oracle"] < 20

    assert main(["eval", "nll-test", "--checkpoint", str(tiny_run), "--samples", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_sequences"] == 50 and 0 < result["nll_test"] < np.log(40) + 1


def test_resume_of_a_finished_run_is_a_no_op(tiny_run, capsys):
    before = (tiny_run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(tiny_run)]) == 0
    assert (tiny_run / "metrics.jsonl").read_text() == before


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *args], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code, stderr, fragment):
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqgan-kit: error:"), stderr
    assert fragment in lines[0]


@pytest.mark.slow
def test_bad_inputs_give_one_line_errors(tmp_path, tiny_run):
    code, _, err = run_cli("train", str(tmp_path / "missing.toml"))
    assert_one_line_error(code, err, "recipe not found")

    code, _, err = run_cli("train", RECIPE, "--set", "mle.lrr=1", "--run-dir", str(tmp_path / "r"))
    assert_one_line_error(code, err, "unknown key 'mle.lrr'")
    assert not (tmp_path / "r").exists()

    bad = {f"p{i:02d}": np.zeros((3, 3), np.float32) for i in range(15)}
    np.savez(tmp_path / "bad.npz", **bad)
    samples = tmp_path / "s.txt"
    samples.write_text("1 2 3\n")
    code, _, err = run_cli("eval", "nll-oracle", "--oracle", str(tmp_path / "bad.npz"), "--samples", str(samples))
    assert_one_line_error(code, err, "has shape")

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes((tiny_run / "checkpoint.safetensors").read_bytes()[:300])
    code, _, err = run_cli("sample", str(corrupt), "-n", "2")
    assert_one_line_error(code, err, "not a readable checkpoint")

    words = tmp_path / "words.txt"
    words.write_text("1 2 3\n4 five 6\n")
    code, _, err = run_cli("eval", "nll-oracle", "--oracle", "1", "--samples", str(words))
    assert_one_line_error(code, err, "words.txt:2: 'five' is not an integer token id")

    oov = tmp_path / "oov.txt"
    oov.write_text("1 2 3\n4 5000 6\n")
    code, _, err = run_cli("eval", "nll-oracle", "--oracle", "1", "--samples", str(oov))
    assert_one_line_error(code, err, "token id 5000 outside the vocabulary")

    (tmp_path / "empty.txt").write_text("")
    code, _, err = run_cli("eval", "nll-oracle", "--oracle", "1", "--samples", str(tmp_path / "empty.txt"))
    assert_one_line_error(code, err, "is empty")

    (tmp_path / "latin.txt").write_bytes(b"1 2 \xff\n")
    code, _, err = run_cli("eval", "nll-oracle", "--oracle", "1", "--samples", str(tmp_path / "latin.txt"))
    assert_one_line_error(code, err, "not UTF-8")

    code, _, err = run_cli("train", RECIPE, "--run-dir", str(tiny_run))
    assert_one_line_error(code, err, "already exists")


def test_help_lists_every_command():
    code, out, _ = run_cli("--help")
    assert code == 0
    for command in ("train", "sample", "eval"):
        assert command in out
    code, out, _ = run_cli("eval", "--help")
    for metric in ("nll-oracle", "nll-test"):
        assert metric in out
