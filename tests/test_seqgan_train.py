"""End-to-end SeqGAN training on a tiny synthetic task: phases, parameter updates, resume, bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.train import seqgan
from seqgan_kit.train.runner import train

from .tiny import RECIPE, TINY, kill_on_call

pytestmark = pytest.mark.slow  # end-to-end training runs: outside the fast subset (-m "not slow")

SEQGAN = TINY + [
    "algorithm=seqgan",
    "mle.epochs=2",
    "discriminator.emb_dim=8",
    "discriminator.filter_sizes=[1, 2, 3]",
    "discriminator.num_filters=[4, 4, 4]",
    "seqgan.d_batch_size=32",
    "seqgan.d_pretrain_rounds=2",
    "seqgan.d_pretrain_epochs=1",
    "seqgan.iterations=3",
    "seqgan.d_steps=1",
    "seqgan.d_epochs=1",
    "seqgan.num_rollouts=2",
    "seqgan.n_negative=64",
    "seqgan.g_batch_size=8",
    "seqgan.eval_every=1",
    "seqgan.checkpoint_every=1",
]


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def seqgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("seqgan") / "run"
    train(RECIPE, SEQGAN, run_dir=str(run))
    return run


def test_all_phases_are_logged_with_their_metrics(seqgan_run):
    recs = records(seqgan_run)
    assert [(r["phase"], r.get("epoch", r.get("step"))) for r in recs] == [
        ("pretrain_g", 0), ("pretrain_g", 1), ("pretrain_g", 2),
        ("pretrain_d", 1), ("pretrain_d", 2),
        ("adversarial", 0), ("adversarial", 1), ("adversarial", 2), ("adversarial", 3),
    ]
    adv = [r for r in recs if r["phase"] == "adversarial"]
    assert all("nll_oracle" in r and "nll_test" in r for r in adv)
    assert all(0 <= r["mean_reward"] <= 1 for r in adv[1:])
    # D statistics appear once the first adversarial discriminator round has run (after iteration 1).
    assert "d_loss" not in adv[1]
    assert all(0 <= r["d_accuracy"] <= 1 and r["d_loss"] > 0 for r in adv[2:])


def test_adversarial_training_changes_the_generator(seqgan_run):
    before = load_file(str(seqgan_run / "generator_mle.safetensors"))
    after = load_file(str(seqgan_run / "generator.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_resume_in_the_adversarial_phase_matches_an_uninterrupted_run(seqgan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, seqgan.SeqGANTrainer, "generator_step", 3)
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, SEQGAN, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(seqgan_run)


def test_start_from_an_mle_checkpoint_and_reject_a_foreign_discriminator(seqgan_run, tmp_path):
    run = tmp_path / "from_mle"
    train(RECIPE, SEQGAN + [f"init.generator={seqgan_run / 'generator_mle.safetensors'}",
                            "seqgan.iterations=1"], run_dir=str(run))
    assert records(run)[0]["phase"] == "pretrain_d"  # MLE skipped

    other = tmp_path / "other_vocab"
    # Only its discriminator checkpoint is needed: no MLE epochs, one D round, no adversarial iteration.
    train(RECIPE, SEQGAN + ["oracle.vocab_size=30", "mle.epochs=0", "seqgan.d_pretrain_rounds=1",
                            "seqgan.iterations=0"], run_dir=str(other))
    with pytest.raises(UserError, match="another vocabulary"):
        train(RECIPE, SEQGAN + [f"init.discriminator={other}"], run_dir=str(tmp_path / "bad"))


def test_bad_seqgan_recipes_are_one_line_errors(tmp_path, capsys):
    args = ["train", RECIPE, "--run-dir", str(tmp_path / "r")]
    assert main(args + ["--set", "algorithm=seqgan", "--set", "oracle.seq_len=8"] + sum(
        (["--set", o] for o in TINY if not o.startswith("oracle.seq_len")), [])) == 2
    assert "exceeds the sequence length 8" in capsys.readouterr().err
    assert main(args + ["--set", "algorithm=seqgan", "--set", "seqgan.num_rollouts=0"]) == 2
    assert "seqgan.num_rollouts: must be positive" in capsys.readouterr().err
