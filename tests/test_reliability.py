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

import numpy as np
import pytest
import torch

from seqgan_kit.cli.main import main
from seqgan_kit.files import HOST_TAG
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


def _all_files(run: Path) -> dict[str, bytes]:
    """Every file under a run directory (hidden ones and ``tokenizer/`` included), by relative path."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A finished tiny whitespace-token text run (one MLE epoch) on a generated corpus."""
    root = tmp_path_factory.mktemp("text")
    words = ["the cat", "a dog", "the bird", "a fish"]
    lines = [f"{words[i % 4]} sees {words[(i * 7) % 4]}" for i in range(120)]
    (root / "train.txt").write_text("\n".join(lines[:100]) + "\n")
    (root / "test.txt").write_text("\n".join(lines[100:]) + "\n")
    recipe = root / "text.toml"
    recipe.write_text(f'name = "t"\ntask = "text"\ndevice = "cpu"\n[data]\nname = "words"\ndir = "{root}"\n'
                      'tokenizer = "whitespace"\nmax_tokens = 8\n[generator]\nemb_dim = 8\nhidden_dim = 8\n'
                      '[mle]\nepochs = 1\nbatch_size = 32\n[eval]\nbleu_samples = 10\nbleu_references = 10\n')
    run = root / "run"
    assert main(["train", str(recipe), "--run-dir", str(run), "--threads", "1"]) == 0
    return run


D_SMALL = ["discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2]", "discriminator.num_filters=[4, 4]",
           "seqgan.d_batch_size=32"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, overrides, needle", [
    ("synthetic", ["oracle.vocab_size=60"], "other training data"),  # the task is rebuilt and compared
    ("synthetic", ["oracle.seed=1"], "other training data"),
    ("synthetic", ["generator.hidden_dim=16"], "has shape"),  # the model is built and loaded
    ("synthetic", ["algorithm=seqgan", *D_SMALL], "no discriminator weights"),  # another algorithm's models
    ("synthetic", ["mle.lr=-1"], "mle.lr"),  # plain validation
    ("synthetic", ["oracle.train_file=nowhere.txt"], "nowhere.txt"),  # the task's data are read
    ("text", ["data.max_train=50"], "data.max_train: cannot change on --resume (0 -> 50)"),
    ("text", ["data.max_tokens=5"], "data.max_tokens: cannot change on --resume (8 -> 5)"),
    ("text", ["algorithm=seqgan", *D_SMALL], "no discriminator weights"),
    ("text", ["data.tokenizer=char"], "data.tokenizer: cannot change on --resume"),
    ("synthetic", ["init.generator=nowhere"], "init.generator: cannot change on --resume"),
])
def test_a_failed_resume_leaves_every_file_of_the_run_byte_identical(base_run, text_run, tmp_path, capsys, kind,
                                                                       overrides, needle):
    """A resume whose overrides fail anywhere (validation, the task or tokenizer check, building the models,
    loading the checkpoint) writes nothing: config.toml, run.json, metrics, tokenizer, every file as it was;
    and a plain ``--resume`` still works afterwards."""
    run = tmp_path / "run"
    shutil.copytree(base_run if kind == "synthetic" else text_run, run)
    before = _all_files(run)
    args = [a for kv in overrides for a in ("--set", kv)]
    assert main(["train", "--resume", str(run), *args, "--threads", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("seqgan-kit: error: ")]
    assert len(err) == 1 and needle in err[0], err
    assert _all_files(run) == before
    if kind == "synthetic" and overrides == ["oracle.vocab_size=60"]:  # and the run is still resumable
        assert main(["train", "--resume", str(run), "--set", "mle.epochs=3", "--threads", "1"]) == 0


@pytest.mark.slow
def test_a_resume_may_point_to_the_corpus_in_its_new_place(text_run, tmp_path):
    """``data.dir`` says where the corpus is, not what it is: a moved corpus resumes (its fingerprint matches)."""
    run, moved = tmp_path / "run", tmp_path / "moved"
    shutil.copytree(text_run, run)
    moved.mkdir()
    for name in ("train.txt", "test.txt"):
        shutil.copy(text_run.parent / name, moved / name)
    assert main(["train", "--resume", str(run), "--set", f"data.dir={moved}", "--set", "mle.epochs=2",
                 "--threads", "1"]) == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2


def test_run_dir_with_resume_is_an_error(run_copy, tmp_path, capsys):
    before = _all_files(run_copy)
    assert main(["train", "--resume", str(run_copy), "--run-dir", str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--run-dir cannot be combined with --resume" in err[0], err
    assert _all_files(run_copy) == before and not (tmp_path / "elsewhere").exists()


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
    long.write_text("1 2 3 4 5 6 7\n")  # the tiny model's seq_len is 6
    code, _, err = cli("eval", "nll-test", "--checkpoint", str(base_run), "--samples", str(long))
    one_error(code, err, str(long), "7 tokens", "seq_len 6")


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
                             "--seed", "0", "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    tmp = tmp_path / f".big.txt.tmp{proc.pid}.{HOST_TAG}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (tmp.exists() and tmp.stat().st_size > 4096 * 13):
            time.sleep(0.2)
        assert tmp.exists() and tmp.stat().st_size > 4096 * 13, "no chunk was written"
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()
    proc = subprocess.Popen([sys.executable, "-m", "seqgan_kit", "sample", str(base_run), "-n", "1000000000",
                             "--seed", "0"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
    gen = LSTMGenerator(12, 8, 8, seq_len=7, start_token=1, eos_token=2, pad_token=0).eval()
    model = TextModel.__new__(TextModel)
    model.generator, model.eval_cfg = gen, SimpleNamespace(batch_size=32)
    whole = model.sample_ids(100, 0.9, seed=5)
    chunks = list(model.iter_sample_ids(100, 0.9, seed=5))
    assert [len(c) for c in chunks] == [32, 32, 32, 4]
    assert torch.equal(torch.cat(chunks), whole)


# ------------------------------------------------------------------------------- run directories stay put
@pytest.mark.parametrize("name", ["../../escaped_by_name", "/tmp/absolute_name", "a/b", "..", "a\\b", ""])
def test_a_recipe_name_with_folders_is_a_one_line_error(tmp_path, name, capsys, monkeypatch):
    """The default run directory is ``runs/<name>-<time>``: a name that would put it elsewhere is refused before
    anything is made, wherever the run would have gone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    assert main(["train", RECIPE, *SETS, "--set", f"name={json.dumps(name)}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: name: must be a plain name"), err
    assert [p for p in tmp_path.rglob("*") if p.name not in ("deep", "er")] == []
    assert not Path("/tmp/absolute_name").exists() and not list(Path("/tmp").glob("absolute_name-*"))


def _start_writing(base_run: Path, out: Path, stderr: int = subprocess.DEVNULL) -> subprocess.Popen:
    """A ``sample -n 1e9 --out OUT`` subprocess, returned once its temporary file holds a few chunks."""
    proc = subprocess.Popen([sys.executable, "-m", "seqgan_kit", "sample", str(base_run), "-n", "1000000000",
                             "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    tmp = out.with_name(f".{out.name}.tmp{proc.pid}.{HOST_TAG}")
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp.exists() and tmp.stat().st_size > 4096 * 13):
        time.sleep(0.2)
    if not tmp.exists():
        proc.kill()  # no writer outlives a failed test
        proc.wait()
        raise AssertionError("the writer made no temporary file")
    return proc


@pytest.mark.slow
def test_a_killed_writers_temp_file_never_outlives_the_next_write(base_run, tmp_path):
    """SIGTERM: the writer removes its own temporary file. kill -9: the file stays until the next command
    that writes the same target, which removes it (a live writer's file is left alone)."""
    out = tmp_path / "s.txt"
    proc = _start_writing(base_run, out, stderr=subprocess.PIPE)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + 15
    assert err.splitlines()[-1].startswith("seqgan-kit: terminated ("), err
    assert list(tmp_path.iterdir()) == []
    proc = _start_writing(base_run, out)
    proc.kill()
    proc.wait()
    left = out.with_name(f".s.txt.tmp{proc.pid}.{HOST_TAG}")
    assert left.exists()
    live = out.with_name(f".s.txt.tmp{os.getpid()}")
    live.write_text("busy")
    code, _, err = cli("sample", str(base_run), "-n", "3", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.txt", live.name])
    assert len(out.read_text().splitlines()) == 3


def test_a_killed_data_prepare_build_folder_is_removed_by_the_next_prepare(tmp_path, capsys):
    """A ``data prepare`` killed mid-build leaves ``<root>/.<corpus>.tmpPID/``; the next prepare into that root
    (of any corpus) removes it."""
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import os, pathlib, sys, time; "
                             "d = pathlib.Path(sys.argv[1]) / f'.image_coco.tmp{os.getpid()}'; d.mkdir(); "
                             "(d / 'train.txt').write_text('half'); print(d, flush=True); time.sleep(60)", str(root)],
                            stdout=subprocess.PIPE, text=True)
    build = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert build.is_dir()
    source = tmp_path / "poems.txt"
    source.write_text("x\n")
    assert main(["data", "prepare", "poetry_quatrain5", "--source", str(source), "--root", str(root)]) == 2
    assert not build.exists(), "the stale build folder of a dead process is removed"


# ------------------------------------------------------------------------------------- damaged records
def test_a_damaged_middle_line_of_the_metrics_log_is_kept_aside_with_a_warning(run_copy, capsys):
    """Resume keeps every record; a garbage line in the middle goes to metrics.jsonl.damaged, named by its line
    number in a warning; a torn last line (a crash in mid-write) is only left out, as before."""
    log = run_copy / "metrics.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 3  # epochs 0, 1, 2
    log.write_text("\n".join([lines[0], "garbage {not json", lines[1], "[1, 2]", lines[2]]) + "\n"
                   + '{"phase": "pretrain_g", "epo')
    assert main(["train", "--resume", str(run_copy), "--set", "mle.epochs=3", "--threads", "1"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "lines 2, 4" in err[0] and "metrics.jsonl.damaged" in err[0], err
    assert (run_copy / "metrics.jsonl.damaged").read_text() == "garbage {not json\n[1, 2]\n"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [json.dumps(r) for r in records[:3]] == [json.dumps(json.loads(line)) for line in lines]


# ------------------------------------------------------------------------------------------ FED inputs
def test_fed_is_a_finite_number_or_a_one_line_error():
    """One sample, a negative/NaN/infinite eps, non-finite embeddings, an eps that breaks the factorisation: a
    FEDError (one line at the CLI, a ValueError to library callers), never LinAlgError and never ``nan``."""
    from seqgan_kit.errors import UserError
    from seqgan_kit.metrics.embedding import FEDError, fed

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(30, 4))
    assert np.isfinite(fed(x, y)) and np.isfinite(fed(x, y, eps=1e-6))
    bad_inf = y.copy()
    bad_inf[3, 1] = np.inf
    cases = [(x, y[:1], 1e-6, "at least 2"), (x, y, float("nan"), "--eps"), (x, y, float("inf"), "--eps"),
             (x, y, -1.0, "--eps"), (x, bad_inf, 0.0, "non-finite"), (x, y, 1e300, "cannot be computed")]
    for ref, gen, eps, needle in cases:
        with pytest.raises(FEDError, match=needle) as info:
            fed(ref, gen, eps=eps)
        assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


@pytest.fixture(scope="module")
def w2v_run(text_run, tmp_path_factory) -> Path:
    """A tiny word2vec encoder run on the corpus of ``text_run``."""
    import tomllib

    import tomli_w

    run = tmp_path_factory.mktemp("w2v") / "run"
    text = tomllib.loads((text_run.parent / "text.toml").read_text(encoding="utf-8"))
    recipe = run.parent / "w2v.toml"  # the text recipe's data, without the tables word2vec does not use
    recipe.write_text(tomli_w.dumps({k: v for k, v in text.items() if k not in ("generator", "mle", "eval")}),
                      encoding="utf-8")
    assert main(["train", str(recipe), "--run-dir", str(run), "--set", "algorithm=word2vec", "--set",
                 "word2vec.vector_size=8", "--set", "word2vec.min_count=1", "--set", "word2vec.epochs=1", "--set",
                 "word2vec.workers=1"]) == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("eps, hyps, needle", [("1e-6", 1, "at least 2 sentences, got 1"),
                                               ("0", 1, "at least 2 sentences, got 1"),
                                               ("inf", 20, "--eps must be a finite number"),
                                               ("nan", 20, "--eps must be a finite number"),
                                               ("-1", 20, "--eps must be a finite number")])
def test_eval_fed_bad_eps_and_one_hypothesis_are_one_line_errors(w2v_run, text_run, tmp_path, capsys, eps, hyps,
                                                                 needle):
    test = (text_run.parent / "test.txt").read_text().splitlines()
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("\n".join(test[:hyps]) + "\n")
    assert main(["eval", "fed", "--encoder", str(w2v_run), "--hyp", str(hyp), "--ref",
                 str(text_run.parent / "train.txt"), "--eps", eps]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: ") and needle in err[0], err


# ------------------------------------------------------------------------------------------------ seeds
BIG = str(2**64)


@pytest.mark.parametrize("args, needle", [
    (["train", RECIPE, "--set", f"seed={BIG}", "--run-dir", "x"], "seed: a seed must be"),
    (["train", RECIPE, "--set", "seed=-1", "--run-dir", "x"], "seed: a seed must be"),
    (["train", RECIPE, "--set", f"oracle.seed={2**63}", "--run-dir", "x"], "oracle.seed: a seed must be"),
    (["train", RECIPE, "--set", f"mle.epochs={BIG}", "--run-dir", "x"], "mle.epochs: must fit in 64 bits"),
    (["sample", "RUN", "-n", "2", "--seed", BIG], "--seed must be a whole number in [0, 2^63)"),
    (["sample", "RUN", "-n", "2", "--seed", "-1"], "--seed must be"),
    (["eval", "sweep", "RUN", "-n", "10", "--seed", BIG], "--seed must be"),
    (["eval", "infill", "RUN", "--seed", BIG], "--seed must be"),
    (["fill", "RUN", "1 ___ 3", "--seed", BIG], "--seed must be"),
    (["eval", "nll-oracle", "--oracle", BIG, "--samples", "x.txt"], "--oracle (a random oracle's seed) must be"),
    (["eval", "nll-oracle", "--oracle", "-5", "--samples", "x.txt"], "--oracle (a random oracle's seed) must be"),
])
def test_seeds_outside_0_to_2_63_are_one_line_errors_on_every_command(base_run, tmp_path, monkeypatch, capsys,
                                                                       args, needle):
    """Every command taking a seed checks it before any work (``torch.manual_seed`` would overflow above 2^64
    and wrap negative ones)."""
    monkeypatch.chdir(tmp_path)
    assert main([str(base_run) if a == "RUN" else a for a in args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: ") and needle in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_every_seed_flag_of_the_parser_is_checked():
    """The check walks the parsed flags by name, so a command added later with a ``--seed`` is covered too."""
    from seqgan_kit.cli.main import build_parser, check_seed_flags
    from seqgan_kit.errors import UserError

    parser = build_parser()
    commands = [["sample", "r"], ["eval", "sweep", "r"], ["eval", "infill", "r"], ["fill", "r", "t"]]
    for cmd in commands:
        check_seed_flags(parser.parse_args([*cmd, "--seed", str(2**63 - 1)]))
        with pytest.raises(UserError, match="--seed"):
            check_seed_flags(parser.parse_args([*cmd, "--seed", str(2**63)]))


# ------------------------------------------------------------------------------ torchrun's environment
@pytest.mark.parametrize("env, needle", [
    ({"WORLD_SIZE": "2"}, "RANK is not set"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR is not set"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "localhost"}, "MASTER_PORT is not set"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}, "RANK must lie in"),
    ({"WORLD_SIZE": "2", "RANK": "x"}, "RANK must be a whole number"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "99999"}, "MASTER_PORT must be"),
])
def test_a_partial_torchrun_environment_is_a_one_line_error(run_copy, monkeypatch, capsys, env, needle):
    """WORLD_SIZE > 1 set by hand, without what torchrun sets beside it, stops before any work."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = _all_files(run_copy)
    assert main(["train", "--resume", str(run_copy), "--set", "mle.epochs=3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: ") and needle in err[0], err
    assert _all_files(run_copy) == before


# ----------------------------------------------------------------------------- non-finite weights, depth
@pytest.fixture(scope="module")
def nan_runs(base_run, tmp_path_factory) -> dict[str, Path]:
    """Copies of the base run whose generator weights hold a NaN / a +inf (checkpoint and MLE weights)."""
    from seqgan_kit.runs.checkpoint import load_checkpoint, save_checkpoint

    out = {}
    for tag, value in (("nan", float("nan")), ("inf", float("inf"))):
        run = tmp_path_factory.mktemp(tag) / "run"
        shutil.copytree(base_run, run)
        for name in ("checkpoint.safetensors", "generator_mle.safetensors"):
            tensors, meta = load_checkpoint(base_run / name)
            tensors["model.generator.lstm.weight_ih_l0"][0, 0] = value
            save_checkpoint(run / name, tensors, meta)
        out[tag] = run
    return out


@pytest.mark.parametrize("tag", ["nan", "inf"])
@pytest.mark.parametrize("command", ["nll-test", "sample", "sample-weights", "resume"])
def test_a_checkpoint_with_non_finite_weights_is_refused_by_every_loader(nan_runs, tmp_path, capsys, tag, command):
    """``eval nll-test`` printed ``nan`` with exit 0, ``sample`` a traceback: now every loader refuses."""
    run = nan_runs[tag]
    samples = tmp_path / "ids.txt"
    samples.write_text("1 2 3 4 5 6\n")
    before = _all_files(run)
    args = {"nll-test": ["eval", "nll-test", "--checkpoint", str(run), "--samples", str(samples)],
            "sample": ["sample", str(run), "-n", "2"],
            "sample-weights": ["sample", str(run / "generator_mle.safetensors"), "-n", "2"],
            "resume": ["train", "--resume", str(run), "--set", "mle.epochs=3", "--threads", "1"]}[command]
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and ("NaN" in err[0] or "non-finite" in err[0]), err
    assert captured.out == "" or command == "resume"
    assert _all_files(run) == before


def test_a_non_finite_score_is_an_error_not_a_number(capsys):
    from seqgan_kit.cli.main import _print_result
    from seqgan_kit.errors import UserError

    with pytest.raises(UserError, match="nll_test is not finite"):
        _print_result({"nll_test": float("nan"), "n_sequences": 3}, False)
    with pytest.raises(UserError, match="nll_oracle is not finite"):
        _print_result({"nll_oracle": float("inf")}, True)
    assert capsys.readouterr().out == ""


def test_a_1200_deep_extends_chain_and_deep_nesting_are_one_line_errors(tmp_path, capsys):
    """No RecursionError from user input: the extends chain has a depth limit; TOML and JSON nested thousands
    deep (a recipe, a --set value, a metrics line) are refused or skipped in one line."""
    for i in range(1200):
        (tmp_path / f"r{i}.toml").write_text(f'extends = "r{i + 1}.toml"\n' if i < 1199 else 'name = "x"\n')
    assert main(["train", str(tmp_path / "r0.toml"), "--run-dir", str(tmp_path / "run")]) == 2
    deep = "[" * 5000 + "]" * 5000
    (tmp_path / "deep.toml").write_text(f"v = {deep}\n")
    assert main(["train", str(tmp_path / "deep.toml"), "--run-dir", str(tmp_path / "run")]) == 2
    assert main(["train", RECIPE, "--set", f"mle.lr={deep}", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("seqgan-kit: error: ") for line in err), err
    assert "longer than 64 recipes" in err[0] and "too deeply" in err[1] and "too deeply" in err[2]
    assert not (tmp_path / "run").exists()
    from seqgan_kit.config import MAX_EXTENDS, read_recipe

    assert read_recipe(tmp_path / f"r{1200 - MAX_EXTENDS}.toml") == {"name": "x"}  # 64 recipes in all: fine
    from seqgan_kit.runs.rundir import RunDir

    (tmp_path / "metrics.jsonl").write_text('{"a": 1}\n' + deep + "\n")
    assert RunDir(tmp_path).read_metrics() == [{"a": 1}]


# ------------------------------------------------------------------------------ --nproc: errors that mislead
def test_resume_nproc_on_a_locked_run_prints_the_lock_error_once_and_starts_no_rank(run_copy):
    with open(run_copy / ".lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        before = _all_files(run_copy)
        code, out, err = cli("train", "--resume", str(run_copy), "--nproc", "2")
        assert _all_files(run_copy) == before
    one_error(code, err, f"in use by process {os.getpid()}")
    assert out == []


def test_the_launcher_names_the_rank_that_died_not_one_it_stopped():
    """torchrun stops the surviving ranks with SIGTERM once one fails: the line names the root cause."""
    from types import SimpleNamespace

    from seqgan_kit.cli.launch import describe_exit, root_failure

    killed = {0: SimpleNamespace(exitcode=-15, timestamp=100), 1: SimpleNamespace(exitcode=-9, timestamp=100)}
    assert root_failure(killed)[0] == 1 and describe_exit(-9) == "was killed by signal 9 (SIGKILL)"
    crashed = {0: SimpleNamespace(exitcode=-15, timestamp=99), 3: SimpleNamespace(exitcode=1, timestamp=101)}
    assert root_failure(crashed)[0] == 3 and describe_exit(1) == "exited with code 1"
    both = {2: SimpleNamespace(exitcode=-15, timestamp=5), 1: SimpleNamespace(exitcode=-15, timestamp=5)}
    assert root_failure(both)[0] == 1


def test_a_killed_rank_comes_before_one_that_reported_the_lost_peer():
    from types import SimpleNamespace

    from seqgan_kit.cli.launch import root_failure

    failures = {0: SimpleNamespace(exitcode=2, timestamp=7), 1: SimpleNamespace(exitcode=-9, timestamp=7)}
    assert root_failure(failures)[0] == 1


# ------------------------------------------------------------------------------- the catalogue as a test
CATALOGUE = Path(__file__).resolve().parents[1] / "eval" / "reliability_catalogue.py"


def _catalogue_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reliability_catalogue", CATALOGUE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_catalogue_case_states_what_it_expects_and_a_mismatch_fails():
    cat = _catalogue_module()
    cases = cat.cases()
    assert len(cases) >= 140 and all(isinstance(c.expect[0], int) for c in cases)
    assert all(c.expect[1] for c in cases if c.expect[0] != 0)  # every error names its words
    fast = [c for c in cases if c.fast]
    assert 5 <= len(fast) <= 10 and not any(c.pending for c in fast)
    case = cat.Case("x", "y", ["sample"], expect=(2, "must be positive"))
    good = cat.Result(case, "", 2, "seqgan-kit: error: -n must be positive, got 0", 0.1)
    wrong_code = cat.Result(case, "", 0, "seqgan-kit: error: -n must be positive, got 0", 0.1)
    wrong_words = cat.Result(case, "", 2, "seqgan-kit: error: something else", 0.1)
    assert good.ok and not wrong_code.ok and not wrong_words.ok
    assert cat.failures([good, wrong_code, wrong_words]) == [wrong_code, wrong_words]
    pending = cat.Result(cat.Case("x", "y", expect=(2, "z"), pending="issue 20"), "", 0, "", 0.1)
    assert cat.failures([pending]) == []


def test_the_fast_catalogue_subset_gives_what_every_case_expects():
    """One case per class of fault, real subprocesses; the script exits 1 on any mismatch (about 60 s)."""
    proc = subprocess.run([sys.executable, str(CATALOGUE), "--fast"], capture_output=True, text=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " 0 not" in proc.stdout.splitlines()[-1], proc.stdout[-2000:]


@pytest.mark.catalogue
def test_the_whole_catalogue_gives_what_every_case_expects(tmp_path):
    """All ~145 cases (about 15 minutes on 2 cores): outside the default run, ``python -m pytest -m catalogue``."""
    proc = subprocess.run([sys.executable, str(CATALOGUE), "--out", str(tmp_path / "r.md")], capture_output=True,
                          text=True, env=ENV, timeout=3600)
    assert proc.returncode == 0, "\n".join(line for line in proc.stdout.splitlines() if "MISMATCH" in line)
