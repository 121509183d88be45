"""Recipes that extend recipes, the shared [init] table, the best MLE generator, reproducible random streams."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.train.recipe import load_recipe
from seqgan_kit.train.runner import train

from .conftest import require_shared
from .tiny import RECIPE, TINY

ROOT = Path(__file__).resolve().parents[1]
D_TINY = ["discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2]", "discriminator.num_filters=[4, 4]",
          "seqgan.d_pretrain_rounds=1", "seqgan.d_pretrain_epochs=1", "seqgan.iterations=1", "seqgan.d_steps=1",
          "seqgan.d_epochs=1", "seqgan.num_rollouts=2", "seqgan.n_negative=64", "seqgan.g_batch_size=8"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


# --------------------------------------------------------------------------- extends
def test_a_recipe_extends_its_parent_key_by_key(tmp_path):
    write(tmp_path / "base" / "parent.toml", 'name = "p"\nseed = 3\n[mle]\nepochs = 9\nlr = 0.5\n'
                                             '[generator]\nemb_dim = 7\n')
    write(tmp_path / "child.toml", 'extends = "base/parent.toml"\nname = "c"\n[mle]\nepochs = 2\n')
    write(tmp_path / "grandchild.toml", 'extends = "child.toml"\n[mle]\nlr = 0.25\n')
    cfg = load_recipe(tmp_path / "grandchild.toml", ["seed=5"])
    assert (cfg.name, cfg.seed, cfg.mle.epochs, cfg.mle.lr, cfg.generator.emb_dim) == ("c", 5, 2, 0.25, 7)


def test_a_changed_model_kind_replaces_the_parents_table(tmp_path):
    write(tmp_path / "parent.toml", '[generator]\nkind = "lstm"\nemb_dim = 7\n')
    write(tmp_path / "child.toml", 'extends = "parent.toml"\n[generator]\nkind = "lstm"\nhidden_dim = 5\n')
    cfg = load_recipe(tmp_path / "child.toml")
    assert (cfg.generator.emb_dim, cfg.generator.hidden_dim) == (7, 5)  # same kind: merged
    rmc = load_recipe(tmp_path / "child.toml", ["generator.kind=rmc"])  # hidden_dim is no RMC key: not merged
    assert rmc.generator.kind == "rmc" and rmc.generator.emb_dim == 32  # the RMC default, not the parent's 7
    with pytest.raises(UserError, match="generator.kind: unknown generator kind .nosuchkind."):
        load_recipe(tmp_path / "child.toml", ["generator.kind=nosuchkind"])  # replaced, then the kind is checked


def test_missing_parent_and_cycles_are_one_line_errors(tmp_path):
    write(tmp_path / "a.toml", 'extends = "nowhere.toml"\n')
    with pytest.raises(UserError, match=r"extends 'nowhere.toml', which is not found"):
        load_recipe(tmp_path / "a.toml")
    write(tmp_path / "x.toml", 'extends = "y.toml"\n')
    write(tmp_path / "y.toml", 'extends = "x.toml"\n')
    with pytest.raises(UserError, match=r"'extends' forms a cycle \(x.toml -> y.toml -> x.toml\)"):
        load_recipe(tmp_path / "x.toml")
    write(tmp_path / "z.toml", "extends = 3\n")
    with pytest.raises(UserError, match="extends: expected the path of a parent recipe"):
        load_recipe(tmp_path / "z.toml")


def test_shipped_variants_state_only_what_differs():
    cpu = load_recipe(ROOT / "recipes" / "synthetic_seqgan_cpu.toml")
    full = load_recipe(ROOT / "recipes" / "synthetic_seqgan.toml")
    mle = load_recipe(ROOT / "recipes" / "synthetic_mle.toml")
    assert full.oracle == mle.oracle and full.generator == mle.generator and full.mle == mle.mle
    assert (cpu.mle.epochs, sum(cpu.discriminator.num_filters), cpu.algo.iterations) == (50, 430, 30)
    assert (sum(full.discriminator.num_filters), full.algo.iterations, full.algo.d_pretrain_rounds) == (1720, 200, 50)
    gpu = load_recipe(ROOT / "recipes" / "poetry_seqgan_gpu.toml")
    assert gpu.data.name == "poetry_quatrain5" and gpu.generator.emb_dim == 256 and gpu.mle.start_from == "best"


# --------------------------------------------------------------------------- reproducible streams
@pytest.mark.slow
def test_mle_phase_of_a_seqgan_recipe_equals_the_mle_recipe(tmp_path):
    train(RECIPE, TINY, run_dir=str(tmp_path / "mle"))
    train(RECIPE, TINY + ["algorithm=seqgan", *D_TINY], run_dir=str(tmp_path / "seqgan"))
    a = weights(tmp_path / "mle" / "generator_mle.safetensors")
    b = weights(tmp_path / "seqgan" / "generator_mle.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same batches, same order, same machine: bitwise


@pytest.mark.slow
def test_evaluating_more_often_changes_no_weight(tmp_path):
    train(RECIPE, TINY + ["mle.eval_every=1"], run_dir=str(tmp_path / "often"))
    train(RECIPE, TINY + ["mle.eval_every=3"], run_dir=str(tmp_path / "rarely"))
    a = weights(tmp_path / "often" / "generator_mle.safetensors")
    b = weights(tmp_path / "rarely" / "generator_mle.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    often = [r for r in RunDir(tmp_path / "often").read_metrics() if r.get("epoch") in (0, 3, 4)]
    rarely = [r for r in RunDir(tmp_path / "rarely").read_metrics()]
    assert [r["nll_oracle"] for r in often] == [r["nll_oracle"] for r in rarely]  # same evaluation draws


# --------------------------------------------------------------------------- best MLE generator
@pytest.mark.slow
def test_the_best_mle_generator_is_kept_and_later_phases_can_start_from_it(tmp_path):
    run = tmp_path / "best"
    train(RECIPE, TINY + ["mle.epochs=6", "mle.lr=0.2", "algorithm=seqgan", "mle.start_from=best", *D_TINY],
          run_dir=str(run))
    recs = RunDir(run).read_metrics()
    mle = [r for r in recs if r["phase"] == "pretrain_g"]
    best = min(mle, key=lambda r: r["nll_test"])
    assert best["epoch"] != mle[-1]["epoch"]  # lr 0.2 overfits: the last epoch is not the best one
    saved = weights(run / "generator_mle_best.safetensors")
    last = weights(run / "generator_mle.safetensors")
    assert any(not torch.equal(saved[k], last[k]) for k in saved)
    adversarial_start = next(r for r in recs if r["phase"] == "adversarial")
    assert adversarial_start["nll_test"] == pytest.approx(best["nll_test"], abs=1e-9)  # SeqGAN starts from the best


# --------------------------------------------------------------------------- [init]
@pytest.mark.slow
def test_init_generator_and_embeddings(tmp_path, capsys):
    source = tmp_path / "source"
    train(RECIPE, TINY, run_dir=str(source))
    src = weights(source / "generator_mle.safetensors")["model.generator.embedding.weight"]

    run = tmp_path / "from_embeddings"
    train(RECIPE, TINY + ["mle.epochs=0", f"init.embeddings={source}"], run_dir=str(run))
    assert "init: generator embedding <- " in capsys.readouterr().out
    got = weights(run / "generator_mle.safetensors")["model.generator.embedding.weight"]
    assert torch.equal(got, src)

    with pytest.raises(UserError, match="init.embeddings: .* width 8, but no model of this run has that width"):
        train(RECIPE, TINY + ["generator.emb_dim=6", f"init.embeddings={source}"], run_dir=str(tmp_path / "bad"))

    run = tmp_path / "from_generator"
    train(RECIPE, TINY + ["algorithm=seqgan", *D_TINY, f"init.generator={source / 'generator_mle.safetensors'}"],
          run_dir=str(run))
    recs = RunDir(run).read_metrics()
    assert recs[0]["phase"] == "pretrain_d"  # MLE skipped
    start = next(r for r in recs if r["phase"] == "adversarial")
    assert start["nll_test"] == pytest.approx(RunDir(source).read_metrics()[-1]["nll_test"], abs=1e-9)


# --------------------------------------------------------------------------- threads and the data root
def test_threads_flag_sets_and_records_the_thread_count(tmp_path):
    run = tmp_path / "t"
    assert main(["train", RECIPE, "--run-dir", str(run), "--threads", "1",
                 *[a for o in TINY + ["mle.epochs=1"] for a in ("--set", o)]]) == 0
    assert json.loads((run / "run.json").read_text())["cpu_threads"] == 1
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "u"), "--threads", "-1"]) == 2


@pytest.mark.slow
def test_prepared_corpus_is_found_by_the_recipe_without_any_set(tmp_path, monkeypatch):
    from seqgan_kit.data.prepare import prepare_corpus

    source = require_shared("corpora", "sources", "texygen_shi.txt")
    monkeypatch.setenv("SEQGAN_KIT_DATA", str(tmp_path / "data"))
    recipe = str(ROOT / "recipes" / "poetry_mle.toml")
    with pytest.raises(UserError, match="seqgan-kit data prepare poetry_quatrain5"):
        train(recipe, ["mle.epochs=0"], run_dir=str(tmp_path / "before"))
    prepare_corpus("poetry_quatrain5", [str(source)], log=lambda _: None)
    run = tmp_path / "poetry"
    train(recipe, ["data.max_train=200", "generator.emb_dim=8", "generator.hidden_dim=8", "mle.epochs=1",
                   "eval.bleu_samples=20", "eval.bleu_references=50", "device=cpu"], run_dir=str(run))
    assert RunDir(run).read_metrics()[-1]["nll_test"] > 0


@pytest.mark.slow
def test_a_resume_override_of_the_learning_rate_takes_effect(tmp_path):
    from seqgan_kit.runs.checkpoint import load_checkpoint

    run = tmp_path / "lr"
    train(RECIPE, TINY + ["mle.epochs=2"], run_dir=str(run))
    train(None, ["mle.epochs=3", "mle.lr=0.5"], resume=str(run))
    _, meta = load_checkpoint(run / "checkpoint.safetensors")
    assert meta["units_done"] == 3 and meta["optimizer_groups"]["generator_mle"][0]["lr"] == 0.5
    assert json.loads((run / "run.json").read_text())["resumes"][0]["overrides"] == ["mle.epochs=3", "mle.lr=0.5"]
