"""Reliability promises: one writer per run directory, nothing half-made, resume never loses a run, non-finite
numbers never become tokens or checkpoints, clear errors for bad sizes, lengths and OS failures.

CLI promises are checked through ``python -m seqgan_kit`` subprocesses (one thread each); setup runs in-process.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqgan_kit.cli.main import main
from seqgan_kit.models.sampling import sample_categorical
from seqgan_kit.runs.checkpoint import load_model
from seqgan_kit.train import mle

from .tiny import RECIPE, TINY, kill_on_call

pytestmark = pytest.mark.slow  # end-to-end training runs: outside the fast subset (-m "not slow")

SETS = [arg for kv in [*TINY, "mle.epochs=2"] for arg in ("--set", kv)]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SEQGAN = ["algorithm=seqgan", "mle.epochs=1", "discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2, 3]",
          "discriminator.num_filters=[4, 4, 4]", "seqgan.d_batch_size=32", "seqgan.d_pretrain_rounds=1",
          "seqgan.d_pretrain_epochs=1", "seqgan.iterations=2", "seqgan.d_steps=1", "seqgan.d_epochs=1",
          "seqgan.num_rollouts=2", "seqgan.n_negative=64", "seqgan.g_batch_size=8", "seqgan.eval_every=1",
          "seqgan.checkpoint_every=1"]


def cli(*args: str, cwd: Path | None = None) -> tuple[int, list[str], list[str]]:
    """Run ``python -m seqgan_kit ARGS``; return (exit code, stdout lines, stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=120)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines()


def one_error(code: int, err: list[str], *needles: str) -> None:
    """Exit code 2 and exactly one stderr line, ``seqgan-kit: error: ...``, holding every needle."""
    assert code == 2 and len(err) == 1 and err[0].startswith("seqgan-kit: error: "), (code, err)
    for needle in needles:
        assert needle in err[0], (needle, err)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished tiny MLE run (2 epochs, a checkpoint per epoch); tests copy it before changing it."""
    run = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", RECIPE, *SETS, "--run-dir", str(run), "--threads", "1"]) == 0
    return run


@pytest.fixture
def run_copy(base_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


# ---------------------------------------------------------------------------------------------- 1. one writer
def test_a_second_writer_is_refused_naming_the_holders_pid(run_copy, tmp_path):
    """A held lock makes ``--resume`` and a fresh run into the same (empty) folder fail in one line naming the pid;
    the fresh run does not remove a folder it did not make."""
    with open(run_copy / ".lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        before = (run_copy / "config.toml").read_bytes()
        code, _, err = cli("train", "--resume", str(run_copy), "--set", "mle.epochs=3", "--threads", "1")
        one_error(code, err, "in use by process", str(os.getpid()))
        assert (run_copy / "config.toml").read_bytes() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    with open(empty / ".lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        code, _, err = cli("train", RECIPE, *SETS, "--run-dir", str(empty), "--threads", "1")
        one_error(code, err, "in use by process", str(os.getpid()))
    assert empty.is_dir() and [p.name for p in empty.iterdir()] == [".lock"]


def test_the_lock_is_held_for_the_whole_run_and_released_after(tmp_path, monkeypatch):
    """At every checkpoint write another descriptor cannot take the lock; after the run it is free and empty."""
    from seqgan_kit.train.experiment import Experiment

    run = tmp_path / "run"
    seen = []
    real_save = Experiment.save

    def save(self, phase, units):
        with open(run / ".lock", "a+") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append(int((run / ".lock").read_text()))
        real_save(self, phase, units)

    monkeypatch.setattr(Experiment, "save", save)
    assert main(["train", RECIPE, *SETS, "--run-dir", str(run), "--threads", "1"]) == 0
    assert seen and all(s == os.getpid() for s in seen), seen
    with open(run / ".lock", "a+") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
    assert (run / ".lock").read_text() == ""


def test_a_fresh_run_never_writes_into_a_non_empty_folder(run_copy, capsys):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    assert main(["train", RECIPE, *SETS, "--run-dir", str(run_copy)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "already exists and is not empty" in err[0], err
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before


# ------------------------------------------------------------------- 2./3. stale lock, temp files, resume log
def test_resume_takes_over_a_stale_lock_cleans_temp_files_skips_a_torn_line_and_logs_overrides(run_copy):
    """One resume of a run left by a crash: dead pid in ``.lock``, dead writers' temp files (also in
    ``tokenizer/``), half a JSON line at the end of metrics.jsonl. It reports and fixes all three, trains the
    extra epoch, and appends its overrides to run.json's ``resumes``."""
    pid = dead_pid()
    (run_copy / ".lock").write_text(f"{pid}\n")
    stale = [run_copy / f".checkpoint.safetensors.tmp{pid}", run_copy / "tokenizer" / f".vocab.json.tmp{pid}"]
    stale[1].parent.mkdir()
    for path in stale:
        path.write_bytes(b"half")
    live = run_copy / f".config.toml.tmp{os.getpid()}"  # a live writer's file is left alone
    live.write_bytes(b"busy")
    n_records = len((run_copy / "metrics.jsonl").read_text().splitlines())
    with open(run_copy / "metrics.jsonl", "a") as fh:
        fh.write('{"phase": "pretrain_g", "epo')
    code, out, err = cli("train", "--resume", str(run_copy), "--set", "mle.epochs=3", "--threads", "1")
    assert code == 0, err
    assert any(f"stale lock of process {pid}" in line for line in out), out
    for path in stale:
        assert any(f"removed stale temporary file {path}" in line for line in out), out
        assert not path.exists()
    assert live.exists()
    records = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == n_records + 1 and records[-1]["epoch"] == 3
    info = json.loads((run_copy / "run.json").read_text())
    assert [r["overrides"] for r in info["resumes"]] == [["mle.epochs=3"]]


def test_a_bad_override_on_resume_changes_nothing(run_copy):
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_copy.iterdir() if p.is_file()}
    code, _, err = cli("train", "--resume", str(run_copy), "--set", "mle.lr=-1", "--threads", "1")
    one_error(code, err, "mle.lr")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_copy.iterdir() if p.is_file()} == files


def test_a_fresh_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Bad training data (found after the folder is made) and Ctrl-C before the first checkpoint remove the run
    directory the run made; a folder the user made beforehand is kept."""
    words = tmp_path / "words.txt"
    words.write_text("a b c d e f\n")
    run = tmp_path / "new" / "run"
    assert main(["train", RECIPE, *SETS, "--set", f"oracle.train_file={words}", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not an integer token id" in err[0] and "removed" in err[0], err
    assert not run.exists()

    restore = kill_on_call(monkeypatch, mle, "train_epoch", 1)
    assert main(["train", RECIPE, *SETS, "--run-dir", str(run)]) == 130
    assert not run.exists()
    restore()
    kill_on_call(monkeypatch, mle, "train_epoch", 1)
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(["train", RECIPE, *SETS, "--run-dir", str(mine)]) == 130
    assert mine.is_dir()


# ------------------------------------------------------------------------------------- 4. non-finite numbers
def test_the_sampler_refuses_non_finite_rows_and_temperatures():
    ok = torch.zeros(3, 5)
    ok[:, 0] = float("-inf")  # banned tokens are legal
    assert (sample_categorical(ok, 1.0, torch.Generator().manual_seed(0)) != 0).all()
    for bad_value in (float("nan"), float("inf")):
        bad = ok.clone()
        bad[1, 2] = bad_value
        for temperature in (1.0, 0.5, 0.0):
            with pytest.raises(ValueError, match="non-finite probabilities"):
                sample_categorical(bad, temperature)
    with pytest.raises(ValueError, match="non-finite probabilities"):
        sample_categorical(torch.full((2, 4), float("-inf")))
    for temperature in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            sample_categorical(ok, temperature)


def test_a_diverging_run_stops_in_one_line_without_a_checkpoint(run_copy, tmp_path, capsys, monkeypatch):
    """Fresh (CLI): the run stops at epoch 1 and its folder goes. Resume: the checkpoint stays as it was.
    SeqGAN: a diverging discriminator stops the run the same way."""
    run = tmp_path / "fresh"
    code, _, err = cli("train", RECIPE, *SETS, "--set", "mle.lr=1e36", "--run-dir", str(run), "--threads", "1")
    one_error(code, err, "training diverged: non-finite loss at epoch 1", "lower the learning rate")
    assert not run.exists()

    # On resume the optimizer's learning rate comes back from the checkpoint, so make the loss itself NaN.
    real_loss = mle.mle_loss
    monkeypatch.setattr(mle, "mle_loss", lambda gen, batch: real_loss(gen, batch) * float("nan"))
    checkpoint = (run_copy / "checkpoint.safetensors").read_bytes()
    assert main(["train", "--resume", str(run_copy), "--set", "mle.epochs=3"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "training diverged" in err[0] and "epoch 3" in err[0], err
    assert (run_copy / "checkpoint.safetensors").read_bytes() == checkpoint

    seqgan = [arg for kv in [*TINY, *SEQGAN, "seqgan.d_lr=1e36"] for arg in ("--set", kv)]
    assert main(["train", RECIPE, *seqgan, "--run-dir", str(tmp_path / "gan")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "training diverged" in err[0] and "discriminator" in err[0], err


def test_sample_refuses_a_non_finite_temperature(base_run):
    for value in ("nan", "inf"):
        code, out, err = cli("sample", str(base_run), "-n", "2", "--temperature", value)
        one_error(code, err, "--temperature must be a finite number")
        assert out == []


# ------------------------------------------------------------------------------------ 5. nll-test, nll-oracle
def test_nll_test_refuses_sequences_longer_than_the_model(base_run, tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("1 2 3 4 5 6 7\n")  # the tiny model's max_len is 6
    code, _, err = cli("eval", "nll-test", "--checkpoint", str(base_run), "--samples", str(long))
    one_error(code, err, str(long), "7 tokens", "max_len 6")


def test_nll_oracle_reports_the_scored_length_and_warns_off_20(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("1 2 3 4 5 6\n7 8 9 10 11 12\n")
    base = ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "40", "--emb-dim", "8", "--hidden-dim", "8"]
    code, out, err = cli(*base, "--samples", str(short), "--json")
    assert code == 0 and json.loads(out[0])["seq_len"] == 6
    assert len(err) == 1 and "warning" in err[0] and "20" in err[0], err
    code, _, err = cli("eval", "nll-oracle", "--oracle", "88", "--vocab-size", "0", "--samples", str(short))
    one_error(code, err, "--vocab-size must be positive")
    for flag in ("--emb-dim", "--hidden-dim"):
        assert main(["eval", "nll-oracle", "--oracle", "88", flag, "-3", "--samples", str(short)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"{flag} must be positive" in err[0], err


# ----------------------------------------------------------------------------------------------- 6. OS errors
def unwritable(tmp_path: Path) -> Path:
    """A folder path nothing can be written under: chmod 555, or (as root, whom chmod does not stop) a path
    under a regular file."""
    if os.geteuid() == 0:
        blocker = tmp_path / "file.txt"
        blocker.write_text("x")
        return blocker / "sub"
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_unwritable_places_are_one_line_errors(base_run, tmp_path):
    place = unwritable(tmp_path)
    code, out, err = cli("sample", str(base_run), "-n", "3", "--out", str(place / "samples.txt"))
    one_error(code, err, "cannot write")
    code, _, err = cli("train", RECIPE, *SETS, "--run-dir", str(place / "run"), "--threads", "1")
    one_error(code, err, "cannot create run directory")


# ------------------------------------------------------------------------------------ 7. impossible sizes
def test_impossible_sizes_fail_fast_before_anything_is_made(tmp_path):
    run = tmp_path / "huge"
    start = time.perf_counter()
    code, _, err = cli("train", RECIPE, *SETS, "--set", "oracle.vocab_size=1000000000", "--run-dir", str(run))
    one_error(code, err, "GB", "oracle.vocab_size")
    assert not run.exists() and time.perf_counter() - start < 30


def test_sample_streams_a_huge_n_through_the_temp_file(base_run, tmp_path):
    """``-n 1e9`` writes chunk after chunk into the temporary file (the target appears only when complete);
    to stdout, a reader that stops early ends it quietly."""
    out = tmp_path / "big.txt"
    proc = subprocess.Popen([sys.executable, "-m", "seqgan_kit", "sample", str(base_run), "-n", "1000000000",
                             "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tmp = tmp_path / f".big.txt.tmp{proc.pid}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (tmp.exists() and tmp.stat().st_size > 4096 * 13):
            time.sleep(0.2)
        assert tmp.exists() and tmp.stat().st_size > 4096 * 13, "no chunk was written"
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()
    proc = subprocess.Popen([sys.executable, "-m", "seqgan_kit", "sample", str(base_run), "-n", "1000000000"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(timeout=60)
    assert len(first.split()) == 6 and code == 0 and proc.stderr.read() == b""


def test_streamed_samples_equal_one_batch_across_the_chunk_boundary(base_run, tmp_path):
    out = tmp_path / "s.txt"
    assert main(["sample", str(base_run), "-n", "5000", "--seed", "7", "--out", str(out)]) == 0
    gen = load_model(str(base_run), "generator")[0]
    expected = gen.sample(5000, generator=torch.Generator().manual_seed(7), batch_size=4096)
    assert out.read_text().splitlines() == [" ".join(map(str, row)) for row in expected.tolist()]


def test_text_samples_streamed_in_chunks_equal_one_batch():
    """``TextModel.iter_sample_ids`` draws exactly the rows of ``sample_ids`` (EOS/PAD, early stop per chunk)."""
    from types import SimpleNamespace

    from seqgan_kit.models.lstm_generator import LSTMGenerator
    from seqgan_kit.runs.textmodel import TextModel

    torch.manual_seed(0)
    gen = LSTMGenerator(12, 8, 8, max_len=7, start_token=1, eos_token=2, pad_token=0).eval()
    model = TextModel.__new__(TextModel)
    model.generator, model.eval_cfg = gen, SimpleNamespace(batch_size=32)
    whole = model.sample_ids(100, 0.9, seed=5)
    chunks = list(model.iter_sample_ids(100, 0.9, seed=5))
    assert [len(c) for c in chunks] == [32, 32, 32, 4]
    assert torch.equal(torch.cat(chunks), whole)
