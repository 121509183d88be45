"""Real text end to end: train on poems and on English, sample text, sweep, resume, and the bad inputs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.train import mle
from seqgan_kit.train.runner import train

from .conftest import require_shared
from .tiny import kill_on_call

pytestmark = pytest.mark.slow  # end-to-end training runs: outside the fast subset (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]
POETRY = str(ROOT / "recipes" / "poetry_seqgan.toml")
OBAMA = str(ROOT / "recipes" / "obama_mle.toml")

# A few seconds per run: 300 poems, a 16-unit generator, a narrow discriminator, 2 rollouts.
TINY_TEXT = [
    "data.max_train=300", "generator.emb_dim=16", "generator.hidden_dim=16", "mle.epochs=2",
    "eval.bleu_samples=40", "eval.bleu_references=100", "device=cpu",
    "discriminator.filter_sizes=[1, 2, 3, 5]", "discriminator.num_filters=[4, 4, 4, 4]",
    "seqgan.d_pretrain_rounds=1", "seqgan.n_negative=100", "seqgan.iterations=2", "seqgan.num_rollouts=2",
    "seqgan.g_batch_size=8", "seqgan.eval_every=1", "seqgan.checkpoint_every=1", "seqgan.g_lr=0.01",
]

MLE_ONLY = [o for o in TINY_TEXT if not o.startswith(("seqgan.", "discriminator."))]


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def records(run):
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


@pytest.fixture(scope="module")
def poems():
    return require_shared("corpora", "poetry_quatrain5")


@pytest.fixture(scope="module")
def poetry_run(poems, tmp_path_factory):
    run = tmp_path_factory.mktemp("text") / "poetry"
    train(POETRY, TINY_TEXT + [f"data.dir={poems}"], run_dir=str(run))
    return run


def test_poetry_seqgan_run_logs_text_metrics_and_trains_the_generator(poetry_run):
    recs = records(poetry_run)
    phases = [r["phase"] for r in recs]
    assert phases.count("pretrain_g") == 3 and phases.count("adversarial") == 3 and "pretrain_d" in phases
    for r in recs:
        if r["phase"] != "pretrain_d":
            assert 0 < r["bleu2"] < 1 and 0 < r["self_bleu2"] < 1 and r["nll_test"] > 0
            assert 1 <= r["mean_len"] <= 25
    assert recs[2]["nll_test"] < recs[0]["nll_test"]  # MLE learns
    before = load_file(str(poetry_run / "generator_mle.safetensors"))
    after = load_file(str(poetry_run / "generator.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "model.generator.proj.weight" in changed  # the policy gradient really moved the generator
    vocab = json.loads((poetry_run / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["tokens"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and "，" in vocab["tokens"]


def test_sample_prints_chinese_text_without_spaces(poetry_run, capsys):
    assert main(["sample", str(poetry_run), "-n", "7", "--seed", "3", "--temperature", "0.8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    assert all(" " not in line and 0 < len(line.replace("<unk>", "?")) <= 24 for line in lines), lines  # + EOS
    # PAD, BOS and EOS never leak into the text (UNK may: an undertrained model can sample it)
    assert not any(tok in line for tok in ("<pad>", "<bos>", "<eos>") for line in lines)
    assert main(["sample", str(poetry_run), "-n", "7", "--seed", "3", "--temperature", "0.8"]) == 0
    assert capsys.readouterr().out.splitlines() == lines  # the seed fixes the samples
    assert main(["sample", str(poetry_run / "generator_mle.safetensors"), "-n", "2", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out.splitlines()
    assert greedy[0] == greedy[1]


def test_sweep_compares_the_mle_and_seqgan_generators(poetry_run, tmp_path, capsys):
    mle_only = tmp_path / "mle"
    mle_only.mkdir()
    for name in ("config.toml", "generator_mle.safetensors"):
        shutil.copy(poetry_run / name, mle_only / name)
    shutil.copytree(poetry_run / "tokenizer", mle_only / "tokenizer")
    shutil.copy(poetry_run / "generator_mle.safetensors", mle_only / "checkpoint.safetensors")
    out = tmp_path / "sweep"
    assert main(["eval", "sweep", str(mle_only), str(poetry_run), "--temperatures", "0.7,1.0", "-n", "30",
                 "--max-ref", "200", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["runs"]) == {"mle", "poetry"}
    for recs in result["runs"].values():
        assert [r["temperature"] for r in recs] == [0.7, 1.0]
        assert all(0 < r["bleu"]["2"] < 1 for r in recs)
    assert (out / "sweep_bleu2.png").stat().st_size > 1000


def test_resumed_text_run_ends_like_the_uninterrupted_one(poems, tmp_path, monkeypatch):
    recipe = str(ROOT / "recipes" / "poetry_mle.toml")
    overrides = MLE_ONLY + [f"data.dir={poems}", "mle.epochs=3"]
    full = tmp_path / "full"
    train(recipe, overrides, run_dir=str(full))
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, mle, "train_epoch", 2)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, overrides, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(full)


def test_seqgan_from_an_mle_run_reuses_its_vocabulary_and_rejects_another(poetry_run, poems, tmp_path):
    run = tmp_path / "from_mle"
    init = poetry_run / "generator_mle.safetensors"
    train(POETRY, TINY_TEXT + [f"data.dir={poems}", f"init.generator={init}", "seqgan.iterations=1"],
          run_dir=str(run))
    assert (run / "tokenizer" / "vocab.json").read_bytes() == (poetry_run / "tokenizer" / "vocab.json").read_bytes()
    assert [r["phase"] for r in records(run)][0] == "pretrain_d"  # no MLE epochs: the generator was loaded
    other = tmp_path / "other"  # a vocabulary built from 100 poems only: the MLE generator does not fit it
    with pytest.raises(UserError, match="other training examples"):
        train(POETRY, TINY_TEXT + [f"data.dir={poems}", "data.max_train=100", f"init.generator={init}",
                                   "seqgan.iterations=1"], run_dir=str(other))


# ----------------------------------------------------------------------------------------- bad input
def cli(*args, cwd=None):
    """Run the CLI in a subprocess: (exit code, stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)
    return proc.returncode, proc.stderr.strip().splitlines(), proc.stdout


def test_bad_corpora_give_one_line_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    good = tmp_path / "good.txt"
    good.write_text("a b c\n" * 20)
    recipe = str(ROOT / "recipes" / "coco_mle.toml")
    base = ["data.card=", "data.tokenizer=whitespace", "mle.epochs=1"]
    for bad, message in [(empty, "empty"), (latin1, "not UTF-8")]:
        code, err, _ = cli("train", recipe, *sets(base + [f"data.train={bad}", f"data.test={good}"]),
                           "--run-dir", str(tmp_path / f"run_{bad.stem}"))
        assert code == 2 and len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_long_lines_are_truncated_and_counted(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(("w " * n).strip() + "\n" for n in [3, 4, 12, 15] * 10))
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "recipes" / "coco_mle.toml"), *sets(
        ["data.card=", f"data.train={corpus}", f"data.test={corpus}", "data.tokenizer=whitespace",
         "data.max_tokens=10", "mle.epochs=1", "eval.bleu_samples=10", "generator.emb_dim=8",
         "generator.hidden_dim=8"]), "--run-dir", str(run)]) == 0
    assert "truncated 20 of 40 training examples" in capsys.readouterr().out


@pytest.fixture(scope="module")
def obama_run(tmp_path_factory):
    speeches = require_shared("corpora", "obama_speech")
    run = tmp_path_factory.mktemp("obama") / "run"
    train(OBAMA, ["data.max_train=400", "data.spm_vocab_size=600", "generator.emb_dim=16",
                  "generator.hidden_dim=16", "mle.epochs=1", "eval.bleu_samples=20", "eval.bleu_references=50",
                  f"data.dir={speeches}", "device=cpu"], run_dir=str(run))
    return run


def test_english_run_samples_detokenized_text(obama_run, capsys):
    assert (obama_run / "tokenizer" / "spm.model").is_file()
    assert main(["sample", str(obama_run), "-n", "5", "--temperature", "0.7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("▁" not in line for line in lines)  # sentencepiece markers decoded
    assert any(" " in line for line in lines)


def test_missing_spm_model_and_foreign_checkpoint_give_one_line_errors(obama_run, poetry_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(obama_run, broken)
    (broken / "tokenizer" / "spm.model").unlink()
    code, err, _ = cli("sample", str(broken), "-n", "2")
    assert code == 2 and len(err) == 1 and "spm.model" in err[0], err

    mixed = tmp_path / "mixed"  # a poetry run directory holding a checkpoint trained on the speeches
    shutil.copytree(poetry_run, mixed)
    shutil.copy(obama_run / "checkpoint.safetensors", mixed / "checkpoint.safetensors")
    code, err, _ = cli("sample", str(mixed), "-n", "2")
    assert code == 2 and len(err) == 1 and "obama_speech" in err[0] and "poetry_quatrain5" in err[0], err

    code, err, _ = cli("eval", "sweep", str(poetry_run), str(obama_run), "-n", "5")
    assert code == 2 and len(err) == 1 and "corpus" in err[0], err


def test_ids_and_text_come_from_the_same_draws(poetry_run, tmp_path, capsys):
    assert main(["sample", str(poetry_run), "-n", "300", "--seed", "4", "--ids"]) == 0
    ids = [[int(t) for t in line.split()] for line in capsys.readouterr().out.splitlines()]
    out = tmp_path / "poems.txt"
    assert main(["sample", str(poetry_run), "-n", "300", "--seed", "4", "--out", str(out)]) == 0
    vocab = json.loads((poetry_run / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    eos, pad = 2, 0
    decoded = ["".join(vocab[i] for i in row if i not in (eos, pad)) for row in ids]  # PAD only follows EOS
    assert out.read_text(encoding="utf-8").splitlines() == decoded
    code, err, _ = cli("sample", str(poetry_run), "-n", "2", "--out", str(tmp_path / "no" / "such" / "dir.txt"))
    assert code == 2 and len(err) == 1 and "cannot write" in err[0], err


def test_the_api_scores_held_out_sentences_as_the_runs_evaluation_did(poetry_run, poems):
    import seqgan_kit

    lines = [line for line in (Path(poems) / "test.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert seqgan_kit.load(poetry_run).nll(lines) == pytest.approx(records(poetry_run)[-1]["nll_test"], rel=1e-6)
