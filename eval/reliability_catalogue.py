"""Run a catalogue of bad inputs and faults through the ``seqgan-kit`` CLI and write a markdown table.

Every case is a real ``python -m seqgan_kit ...`` subprocess (one CPU thread) on tiny runs made in a temporary
folder: the synthetic MLE and SeqGAN runs, and a tiny whitespace-tokenized text run on a generated corpus. For each case
the table records the command, its exit code and the first line it printed (stderr first, else stdout).

    python eval/reliability_catalogue.py [--out eval/results/reliability.md]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/synthetic_mle.toml"
TINY = ["oracle.vocab_size=40", "oracle.emb_dim=8", "oracle.hidden_dim=8", "oracle.seq_len=6", "oracle.n_train=128",
        "oracle.n_test=64", "generator.emb_dim=8", "generator.hidden_dim=8", "eval.n_samples=64",
        "mle.batch_size=16", "mle.epochs=2", "mle.eval_every=1", "mle.checkpoint_every=1", "device=cpu"]
SEQGAN = ["algorithm=seqgan", "mle.epochs=1", "discriminator.emb_dim=8", "discriminator.filter_sizes=[1,2,3]",
          "discriminator.num_filters=[4,4,4]", "seqgan.d_batch_size=32", "seqgan.d_pretrain_rounds=1",
          "seqgan.d_pretrain_epochs=1", "seqgan.iterations=2", "seqgan.d_steps=1", "seqgan.d_epochs=1",
          "seqgan.num_rollouts=2", "seqgan.n_negative=64", "seqgan.g_batch_size=8", "seqgan.eval_every=1",
          "seqgan.checkpoint_every=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
TIMEOUT_S = 180


def sets(overrides: list[str]) -> list[str]:
    """``--set`` flags for a list of ``key=value`` overrides."""
    return [arg for kv in overrides for arg in ("--set", kv)]


@dataclass
class Case:
    """One catalogue entry: a CLI command (or a shell line), run after an optional setup."""

    area: str
    fault: str
    args: list[str] = field(default_factory=list)
    setup: Callable[[Path], object] | None = None
    shell: str = ""
    """A shell pipeline instead of ``args`` (``{py}`` is the CLI)."""


@dataclass
class Result:
    case: Case
    command: str
    code: int
    first_line: str
    seconds: float


def _run(case: Case, work: Path) -> Result:
    held = case.setup(work) if case.setup else None
    start = time.perf_counter()
    py = f"{shlex.quote(sys.executable)} -m seqgan_kit"
    if case.shell:
        line = case.shell.format(py=py)
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=ENV, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        shown = case.shell.format(py="seqgan-kit")
    else:
        proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *case.args], cwd=work, env=ENV,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        shown = "seqgan-kit " + shlex.join(case.args)
    seconds = time.perf_counter() - start
    if held is not None and hasattr(held, "close"):
        held.close()
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()] or [ln for ln in proc.stdout.splitlines()
                                                                      if ln.strip()]
    first = lines[0] if lines else ""
    shown = shown.replace(shlex.join(sets(TINY + SEQGAN)), "$TINY $SEQGAN").replace(shlex.join(sets(TINY)), "$TINY")
    return Result(case, shown.replace(str(work), "$W").replace(sys.executable, "python"), proc.returncode,
                  first.replace(str(work) + "/", "").replace(str(work), "$W"), seconds)


# ------------------------------------------------------------------------------------------------ fixtures
def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _copy_run(name: str, src: str = "mle") -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(work / src, work / name)
    return setup


def _hold_lock(folder: str, copy_from: str | None = None) -> Callable[[Path], object]:
    """Setup: (copy a run and) hold its lock in this process while the case runs."""
    def setup(work: Path) -> object:
        path = work / folder
        if copy_from:
            shutil.rmtree(path, ignore_errors=True)
            shutil.copytree(work / copy_from, path)
        path.mkdir(exist_ok=True)
        fh = open(path / ".lock", "a+")  # noqa: SIM115 (closed by _run after the case)
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        return fh
    return setup


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _crashed_run(work: Path) -> None:
    """A copy of the MLE run as a crash leaves it: dead pid in .lock, dead writers' temp files."""
    _copy_run("crashed")(work)
    pid = _dead_pid()
    (work / "crashed" / ".lock").write_text(f"{pid}\n")
    _write(work / "crashed" / f".checkpoint.safetensors.tmp{pid}", b"half")


def _torn_run(work: Path) -> None:
    _copy_run("torn")(work)
    with open(work / "torn" / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"phase": "pretrain_g", "epo')


def _corrupt_run(work: Path) -> None:
    _copy_run("corrupt")(work)
    ckpt = work / "corrupt" / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])


def _files(work: Path) -> None:
    """Token-id and text files the eval cases read."""
    _write(work / "ids6.txt", "1 2 3 4 5 6\n7 8 9 10 11 12\n3 3 3 3 3 3\n")
    _write(work / "ids7.txt", "1 2 3 4 5 6 7\n")
    _write(work / "ids10.txt", "3 4 5 6 7 8 9 3 4 5\n")
    _write(work / "ids20.txt", " ".join(str(i) for i in range(20)) + "\n")
    _write(work / "oov.txt", "1 2 3 4 5 99\n")
    _write(work / "words.txt", "the cat sat on the mat\n")
    _write(work / "ragged.txt", "1 2 3\n1 2\n")
    _write(work / "empty.txt", "")
    _write(work / "latin1.bin", "caf\xe9 au lait\n".encode("latin-1"))
    _write(work / "file.txt", "a regular file\n")
    _write(work / "hyp.txt", "the cat sat on the mat\na dog ran in the park\nthe cat ran\n")
    _write(work / "ref.txt", "the cat sat on a mat\nthe dog ran in the park\na cat sat\n")
    _write(work / "one.txt", "only one line here\n")
    _write(work / "not_toml.toml", "this is = = not toml [\n")


def _text_corpus(work: Path) -> None:
    """A small generated English corpus and a word-level text recipe for it."""
    rnd = random.Random(0)
    nouns, verbs = ["cat", "dog", "bird", "fish", "man", "child"], ["sees", "likes", "chases", "finds"]
    lines = [f"the {rnd.choice(nouns)} {rnd.choice(verbs)} a {rnd.choice(nouns)}" for _ in range(300)]
    _write(work / "corpus" / "train.txt", "\n".join(lines[:250]) + "\n")
    _write(work / "corpus" / "test.txt", "\n".join(lines[250:]) + "\n")
    _write(work / "text.toml", f"""name = "tiny_text"
task = "text"
algorithm = "mle"
seed = 0
device = "cpu"

[data]
name = "tiny_words"
dir = "{work / 'corpus'}"
tokenizer = "whitespace"
max_len = 8

[generator]
emb_dim = 8
hidden_dim = 8

[mle]
epochs = 1
batch_size = 32
eval_every = 1
checkpoint_every = 1

[eval]
bleu_samples = 20
bleu_references = 40
""")


# ------------------------------------------------------------------------------------------------ the cases
def cases() -> list[Case]:
    t, sg = sets(TINY), sets(TINY + SEQGAN)
    th = ["--threads", "1"]
    return [
        # ---------------------------------------------------------------- train, mle
        Case("train mle", "tiny run (baseline)", ["train", RECIPE, *t, "--run-dir", "c_ok", *th]),
        Case("train mle", "fresh run into a non-empty folder", ["train", RECIPE, *t, "--run-dir", "mle", *th]),
        Case("train mle", "unknown key", ["train", RECIPE, *t, "--set", "mle.foo=1", "--run-dir", "c1", *th]),
        Case("train mle", "negative learning rate", ["train", RECIPE, *t, "--set", "mle.lr=-1", "--run-dir", "c2"]),
        Case("train mle", "NaN learning rate", ["train", RECIPE, *t, "--set", "mle.lr=nan", "--run-dir", "c3"]),
        Case("train mle", "diverging learning rate (non-finite loss)",
             ["train", RECIPE, *t, "--set", "mle.lr=1e36", "--run-dir", "c4", *th]),
        Case("train mle", "learning rate that overflows the Adam step",
             ["train", RECIPE, *t, "--set", "mle.lr=1e38", "--run-dir", "c5", *th]),
        Case("train mle", "impossible vocabulary size (memory)",
             ["train", RECIPE, *t, "--set", "oracle.vocab_size=1000000000", "--run-dir", "c6"]),
        Case("train mle", "impossible hidden size (memory)",
             ["train", RECIPE, *t, "--set", "generator.hidden_dim=10000000", "--run-dir", "c7"]),
        Case("train mle", "missing recipe file", ["train", "no_such.toml", "--run-dir", "c8"]),
        Case("train mle", "recipe that is not TOML", ["train", "not_toml.toml", "--run-dir", "c9"]),
        Case("train mle", "both RECIPE and --resume", ["train", RECIPE, "--resume", "mle"]),
        Case("train mle", "neither RECIPE nor --resume", ["train"]),
        Case("train mle", "negative --threads", ["train", RECIPE, *t, "--threads", "-1", "--run-dir", "c10"]),
        Case("train mle", "--run-dir under a regular file (NotADirectoryError)",
             ["train", RECIPE, *t, "--run-dir", "file.txt/sub", *th]),
        Case("train mle", "training file of words, not ids (folder removed)",
             ["train", RECIPE, *t, "--set", "oracle.train_file=words.txt", "--run-dir", "c11", *th]),
        Case("train mle", "training file missing",
             ["train", RECIPE, *t, "--set", "oracle.train_file=nope.txt", "--run-dir", "c12", *th]),
        Case("train mle", "training ids outside the vocabulary",
             ["train", RECIPE, *t, "--set", "oracle.train_file=oov.txt", "--run-dir", "c13", *th]),
        Case("train mle", "fresh run racing into a locked empty folder",
             ["train", RECIPE, *t, "--run-dir", "locked_empty", *th], setup=_hold_lock("locked_empty")),
        Case("train mle", "device=cuda on a machine without CUDA",
             ["train", RECIPE, *t, "--set", "device=cuda", "--run-dir", "c14", *th]),
        Case("train mle", "unknown task", ["train", RECIPE, *t, "--set", "task=bogus", "--run-dir", "c15"]),
        Case("train mle", "unknown algorithm", ["train", RECIPE, *t, "--set", "algorithm=bogus", "--run-dir", "c16"]),
        Case("train mle", "zero sequence length",
             ["train", RECIPE, *t, "--set", "oracle.seq_len=0", "--run-dir", "c17"]),
        Case("train mle", "zero batch size", ["train", RECIPE, *t, "--set", "mle.batch_size=0", "--run-dir", "c18"]),
        Case("train mle", "wrong value type", ["train", RECIPE, *t, "--set", "mle.epochs=many", "--run-dir", "c19"]),
        Case("train mle", "start token outside the vocabulary",
             ["train", RECIPE, *t, "--set", "oracle.start_token=40", "--run-dir", "c20"]),
        # ---------------------------------------------------------------- train, seqgan
        Case("train seqgan", "tiny run (baseline)", ["train", RECIPE, *sg, "--run-dir", "g_ok", *th]),
        Case("train seqgan", "diverging discriminator (non-finite loss)",
             ["train", RECIPE, *sg, "--set", "seqgan.d_lr=1e36", "--run-dir", "g1", *th]),
        Case("train seqgan", "generator learning rate overflowing the Adam step",
             ["train", RECIPE, *sg, "--set", "seqgan.g_lr=1e38", "--run-dir", "g2", *th]),
        Case("train seqgan", "discriminator filter wider than the sequence",
             ["train", RECIPE, *sg, "--set", "discriminator.filter_sizes=[1,2,20]", "--run-dir", "g3"]),
        Case("train seqgan", "rollout EMA decay out of range",
             ["train", RECIPE, *sg, "--set", "seqgan.rollout_ema=1.5", "--run-dir", "g4"]),
        Case("train seqgan", "zero rollouts",
             ["train", RECIPE, *sg, "--set", "seqgan.num_rollouts=0", "--run-dir", "g5"]),
        Case("train mle", "[seqgan] table in an MLE run",
             ["train", RECIPE, *t, "--set", "seqgan.iterations=1", "--run-dir", "g6"]),
        # ---------------------------------------------------------------- resume
        Case("resume", "more epochs (baseline)", ["train", "--resume", "r1", "--set", "mle.epochs=3", *th],
             setup=_copy_run("r1")),
        Case("resume", "bad override (nothing written)", ["train", "--resume", "r2", "--set", "mle.lr=-1", *th],
             setup=_copy_run("r2")),
        Case("resume", "unknown override key", ["train", "--resume", "r2", "--set", "mle.nope=1", *th]),
        Case("resume", "folder does not exist", ["train", "--resume", "no_such_run", *th]),
        Case("resume", "folder is not a run", ["train", "--resume", "corpus", *th]),
        Case("resume", "another process holds the lock", ["train", "--resume", "r3", *th],
             setup=_hold_lock("r3", copy_from="mle")),
        Case("resume", "stale lock and temp files of a crashed run",
             ["train", "--resume", "crashed", "--set", "mle.epochs=3", *th], setup=_crashed_run),
        Case("resume", "torn last line in metrics.jsonl", ["train", "--resume", "torn", "--set", "mle.epochs=3", *th],
             setup=_torn_run),
        Case("resume", "truncated checkpoint", ["train", "--resume", "corrupt", "--set", "mle.epochs=3", *th],
             setup=_corrupt_run),
        Case("resume", "override that changes the task data",
             ["train", "--resume", "r4", "--set", "oracle.seed=1", *th], setup=_copy_run("r4")),
        Case("resume", "seqgan: more iterations", ["train", "--resume", "r5", "--set", "seqgan.iterations=3", *th],
             setup=_copy_run("r5", "seqgan")),
        Case("resume", "seqgan: bad override", ["train", "--resume", "r5", "--set", "seqgan.g_steps=0", *th]),
        # ---------------------------------------------------------------- sample
        Case("sample", "3 samples (baseline)", ["sample", "mle", "-n", "3"]),
        Case("sample", "-n 0", ["sample", "mle", "-n", "0"]),
        Case("sample", "--temperature nan", ["sample", "mle", "-n", "3", "--temperature", "nan"]),
        Case("sample", "--temperature inf", ["sample", "mle", "-n", "3", "--temperature", "inf"]),
        Case("sample", "--temperature -1", ["sample", "mle", "-n", "3", "--temperature", "-1"]),
        Case("sample", "greedy from the MLE weights file",
             ["sample", "mle/generator_mle.safetensors", "-n", "2", "--temperature", "0"]),
        Case("sample", "--out under a regular file", ["sample", "mle", "-n", "3", "--out", "file.txt/s.txt"]),
        Case("sample", "--out in a missing folder", ["sample", "mle", "-n", "3", "--out", "no/such/s.txt"]),
        Case("sample", "checkpoint path does not exist", ["sample", "no_such_run", "-n", "3"]),
        Case("sample", "truncated checkpoint", ["sample", "corrupt", "-n", "3"]),
        Case("sample", "a text file given as checkpoint", ["sample", "words.txt", "-n", "3"]),
        Case("sample", "-n 1e9 streamed to a reader that stops", shell="{py} sample mle -n 1000000000 | head -n 1"),
        Case("sample", "seqgan run", ["sample", "seqgan", "-n", "2"]),
        Case("sample", "text run (words)", ["sample", "text", "-n", "2", "--seed", "1"]),
        Case("sample", "text run, --ids", ["sample", "text", "-n", "2", "--ids"]),
        # ---------------------------------------------------------------- eval nll-oracle
        Case("eval nll-oracle", "length 6 (warns: the oracle's length is 20)",
             ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "40", "--emb-dim", "8", "--hidden-dim", "8",
              "--samples", "ids6.txt"]),
        Case("eval nll-oracle", "length 20 (no warning)",
             ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "40", "--samples", "ids20.txt", "--json"]),
        Case("eval nll-oracle", "--vocab-size 0", ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "0",
                                                   "--samples", "ids6.txt"]),
        Case("eval nll-oracle", "--hidden-dim -1", ["eval", "nll-oracle", "--oracle", "88", "--hidden-dim", "-1",
                                                    "--samples", "ids6.txt"]),
        Case("eval nll-oracle", "--vocab-size 1e9 (memory)",
             ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "1000000000", "--samples", "ids6.txt"]),
        Case("eval nll-oracle", "words instead of ids", ["eval", "nll-oracle", "--oracle", "88", "--samples",
                                                          "words.txt"]),
        Case("eval nll-oracle", "id outside the vocabulary",
             ["eval", "nll-oracle", "--oracle", "88", "--vocab-size", "40", "--samples", "oov.txt"]),
        Case("eval nll-oracle", "ragged lines", ["eval", "nll-oracle", "--oracle", "88", "--samples", "ragged.txt"]),
        Case("eval nll-oracle", "empty file", ["eval", "nll-oracle", "--oracle", "88", "--samples", "empty.txt"]),
        Case("eval nll-oracle", "not UTF-8", ["eval", "nll-oracle", "--oracle", "88", "--samples", "latin1.bin"]),
        Case("eval nll-oracle", "missing oracle .npz", ["eval", "nll-oracle", "--oracle", "no.npz", "--samples",
                                                         "ids6.txt"]),
        # ---------------------------------------------------------------- eval nll-test
        Case("eval nll-test", "baseline", ["eval", "nll-test", "--checkpoint", "mle", "--samples", "ids6.txt"]),
        Case("eval nll-test", "longer than the model's max_len",
             ["eval", "nll-test", "--checkpoint", "mle", "--samples", "ids7.txt"]),
        Case("eval nll-test", "id outside the vocabulary",
             ["eval", "nll-test", "--checkpoint", "mle", "--samples", "oov.txt"]),
        Case("eval nll-test", "missing checkpoint", ["eval", "nll-test", "--checkpoint", "none", "--samples",
                                                      "ids6.txt"]),
        Case("eval nll-test", "text run, ids from sample --ids",
             shell="{py} sample text -n 5 --ids --out text_ids.txt && "
                   "{py} eval nll-test --checkpoint text --samples text_ids.txt"),
        Case("eval nll-test", "text run, ids longer than its max_len",
             ["eval", "nll-test", "--checkpoint", "text", "--samples", "ids10.txt"]),
        # ---------------------------------------------------------------- eval bleu / self-bleu
        Case("eval bleu", "baseline", ["eval", "bleu", "--hyp", "hyp.txt", "--ref", "ref.txt"]),
        Case("eval bleu", "missing hypothesis file", ["eval", "bleu", "--hyp", "nope.txt", "--ref", "ref.txt"]),
        Case("eval bleu", "empty reference file", ["eval", "bleu", "--hyp", "hyp.txt", "--ref", "empty.txt"]),
        Case("eval bleu", "hypotheses not UTF-8", ["eval", "bleu", "--hyp", "latin1.bin", "--ref", "ref.txt"]),
        Case("eval bleu", "order 0", ["eval", "bleu", "--hyp", "hyp.txt", "--ref", "ref.txt", "--n", "0"]),
        Case("eval bleu", "--max-hyp 0", ["eval", "bleu", "--hyp", "hyp.txt", "--ref", "ref.txt", "--max-hyp", "0"]),
        Case("eval self-bleu", "baseline", ["eval", "self-bleu", "--hyp", "hyp.txt"]),
        Case("eval self-bleu", "a single sentence", ["eval", "self-bleu", "--hyp", "one.txt"]),
        Case("eval self-bleu", "empty file", ["eval", "self-bleu", "--hyp", "empty.txt"]),
        # ---------------------------------------------------------------- eval sweep
        Case("eval sweep", "text run (baseline)", ["eval", "sweep", "text", "--temperatures", "0.8,1.0", "-n", "10"]),
        Case("eval sweep", "synthetic run (no text)", ["eval", "sweep", "mle", "-n", "10"]),
        Case("eval sweep", "temperature nan", ["eval", "sweep", "text", "--temperatures", "nan", "-n", "10"]),
        Case("eval sweep", "-n 0", ["eval", "sweep", "text", "-n", "0"]),
        Case("eval sweep", "--out under a regular file",
             ["eval", "sweep", "text", "--temperatures", "1.0", "-n", "10", "--out", "file.txt/sweep"]),
        # ---------------------------------------------------------------- data
        Case("data", "list the cards", ["data", "list", "--root", "dataroot"]),
        Case("data", "prepare an unknown card", ["data", "prepare", "no_such_corpus", "--root", "dataroot"]),
        Case("data", "prepare from a missing local source",
             ["data", "prepare", "poetry_quatrain5", "--source", "missing.txt", "--root", "dataroot"]),
        Case("data", "prepare into a root under a regular file",
             ["data", "prepare", "poetry_quatrain5", "--source", "words.txt", "--root", "file.txt/root"]),
        Case("data", "text train with a corpus folder that does not exist",
             ["train", "text.toml", "--set", "data.dir=nowhere", "--run-dir", "t1", *th]),
        # ---------------------------------------------------------------- the later algorithms
        Case("train gumbel", "beta_max 0", ["train", RECIPE, *t, "--set", "algorithm=gumbel", "--set",
                                            "gumbel.beta_max=0", "--run-dir", "n1"]),
        Case("train gumbel", "unknown beta schedule", ["train", RECIPE, *t, "--set", "algorithm=gumbel", "--set",
                                                       "gumbel.schedule=cosine", "--run-dir", "n2"]),
        Case("train gumbel", "unknown GAN loss", ["train", RECIPE, *t, "--set", "algorithm=gumbel", "--set",
                                                  "gumbel.loss=wgan", "--run-dir", "n3"]),
        Case("train gumbel", "CNN filter wider than the sequence",
             ["train", RECIPE, *t, "--set", "algorithm=gumbel", "--set", "discriminator.filter_sizes=[1,2,20]",
              "--set", "discriminator.num_filters=[4,4,4]", "--run-dir", "n4"]),
        Case("train gumbel", "unknown generator kind", ["train", RECIPE, *t, "--set", "algorithm=gumbel", "--set",
                                                        "generator.kind=transformer", "--run-dir", "n5"]),
        Case("train maskgan", "present rate above 1", ["train", RECIPE, *t, "--set", "algorithm=maskgan", "--set",
                                                       "maskgan.is_present_rate=1.5", "--run-dir", "n6"]),
        Case("train maskgan", "unknown mask strategy", ["train", RECIPE, *t, "--set", "algorithm=maskgan", "--set",
                                                        "maskgan.mask_strategy=stripes", "--run-dir", "n7"]),
        Case("train maskgan", "unknown baseline", ["train", RECIPE, *t, "--set", "algorithm=maskgan", "--set",
                                                   "maskgan.baseline=median", "--run-dir", "n8"]),
        Case("train word2vec", "on the synthetic task (no text)",
             ["train", RECIPE, *t, "--set", "algorithm=word2vec", "--run-dir", "n9"]),
        Case("train skipthought", "corpus without neighbours",
             ["train", "text.toml", "--set", "algorithm=skipthought", "--run-dir", "n10", *th]),
        Case("fill", "a run that cannot fill (plain MLE)", ["fill", "mle", "1 ___ 3"]),
        Case("fill", "no such run", ["fill", "no_such_run", "1 ___ 3"]),
        Case("eval fed", "encoder run that is not an encoder", ["eval", "fed", "--encoder", "mle", "--hyp",
                                                                "hyp.txt", "--ref", "ref.txt"]),
        Case("eval novelty", "encoder run that does not exist", ["eval", "novelty", "--encoder", "nowhere",
                                                                 "--hyp", "hyp.txt"]),
        Case("encode", "not an encoder run", ["encode", "text", "--nearest", "a sentence"]),
    ]


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return (f"{os.cpu_count()}-core {platform.machine()} VM ({cpu}), {mem:.1f} GB memory, no GPU; "
            f"Python {platform.python_version()}; run as {'root' if os.geteuid() == 0 else 'a regular user'}; "
            f"OMP_NUM_THREADS=1")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "reliability.md"))
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="seqgan-reliability-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "recipes", work / "recipes")
        _files(work)
        _text_corpus(work)
        setup_runs = [
            ["train", RECIPE, *sets(TINY), "--run-dir", "mle", "--threads", "1"],
            ["train", RECIPE, *sets(TINY + SEQGAN), "--run-dir", "seqgan", "--threads", "1"],
            ["train", "text.toml", "--run-dir", "text", "--threads", "1"],
        ]
        for cmd in setup_runs:
            proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *cmd], cwd=work, env=ENV, capture_output=True,
                                  text=True, timeout=TIMEOUT_S)
            if proc.returncode != 0:
                print(f"setup failed: {shlex.join(cmd)}\n{proc.stderr}", file=sys.stderr)
                return 1
        _corrupt_run(work)
        for i, case in enumerate(cases(), start=1):
            result = _run(case, work)
            results.append(result)
            print(f"{i:3d} [{result.code:3d}] {result.seconds:5.1f}s {case.area}: {case.fault}: {result.first_line}",
                  flush=True)
    lines = [
        "# Reliability catalogue",
        "",
        f"Machine: {_machine()}.",
        "",
        f"Generated by `python eval/reliability_catalogue.py` on {time.strftime('%Y-%m-%d')}: every row is a real "
        "`python -m seqgan_kit` subprocess (shown as `seqgan-kit`) on tiny runs in a temporary folder `$W` "
        "(synthetic MLE run `mle`, SeqGAN run `seqgan`, a whitespace-tokenized text run `text` on a generated corpus; "
        "`recipes/` copied there). *First line* is the first line on stderr, else on stdout. Exit codes: 0 ok, "
        "2 a one-line user error, 130 interrupted; anything else would be a crash.",
        "",
        f"`$TINY` stands for `{shlex.join(sets(TINY))}`; `$SEQGAN` for `{shlex.join(sets(SEQGAN))}`.",
        "",
        f"{len(results)} cases; exit codes: " + ", ".join(
            f"{code}: {sum(r.code == code for r in results)}" for code in sorted({r.code for r in results})) + ".",
        "",
        "| # | area | input or fault | command | exit | first line printed |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, start=1):
        lines.append(f"| {i} | {r.case.area} | {_cell(r.case.fault)} | `{_cell(r.command)}` | {r.code} | "
                     f"{_cell(r.first_line)} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
