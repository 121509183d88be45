"""Evaluation that uses what the run knows: eval bleu/self-bleu --run (the card's tokenizer, orders and test split),
the one-token-per-line warning, eval nll-oracle --oracle RUN_DIR; and the CLI defaults (sample -n and seed, list
syntax, --threads, --version)."""

import json

import pytest
import tomli_w

from seqgan_kit import __version__
from seqgan_kit.cli import main
from seqgan_kit.config import to_dict
from seqgan_kit.data.corpus import prepare_text_data
from seqgan_kit.data.data_config import DataConfig

from .tiny import RECIPE, TINY

POEMS = ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。", "白日依山尽，黄河入海流。", "春眠不觉晓，处处闻啼鸟。"]


@pytest.fixture
def poem_run(tmp_path):
    """A text run directory as far as evaluation reads it: config.toml (char corpus, card-style BLEU settings)
    and tokenizer/vocab.json."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("\n".join(POEMS[:3]) + "\n", encoding="utf-8")
    (corpus / "test.txt").write_text(POEMS[3] + "\n" + POEMS[0] + "\n", encoding="utf-8")
    cfg = DataConfig(name="poems", dir=str(corpus), tokenizer="char", eval_tokenizer="char", max_tokens=12,
                     bleu_orders=[2, 3])
    run = tmp_path / "run"
    prepare_text_data(cfg, run / "tokenizer", seed=0, log=lambda _: None)
    (run / "config.toml").write_text(tomli_w.dumps({"task": "text", "seed": 0, "data": to_dict(cfg)}))
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("床前明月光，疑是地上霜。\n白日依山尽，处处闻啼鸟。\n", encoding="utf-8")
    return run, hyp


def test_bleu_with_run_takes_the_card_tokenizer_orders_and_test_split(poem_run, capsys):
    run, hyp = poem_run
    assert main(["eval", "bleu", "--hyp", str(hyp), "--run", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["tokenize"] == "char" and sorted(result["bleu"]) == ["2", "3"] and result["n_ref"] == 2
    assert result["bleu"]["2"] > 0.5 and captured.err == ""
    ref = hyp.parent / "ref.txt"
    ref.write_text(POEMS[3] + "\n" + POEMS[0] + "\n", encoding="utf-8")
    assert main(["eval", "bleu", "--hyp", str(hyp), "--ref", str(ref), "--tokenize", "char", "--n", "2,3",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == result["bleu"]  # the same numbers, spelled out
    assert main(["eval", "self-bleu", "--hyp", str(hyp), "--run", str(run), "--n", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokenize"] == "char"


def test_whitespace_splitting_of_unspaced_text_warns(poem_run, capsys):
    run, hyp = poem_run
    ref = hyp.parent / "ref.txt"
    ref.write_text(POEMS[3] + "\n" + POEMS[1] + "\n", encoding="utf-8")
    assert main(["eval", "bleu", "--hyp", str(hyp), "--ref", str(ref), "--n", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["bleu"]["2"] == 0.0
    assert captured.err.startswith("seqgan-kit: warning: ") and "one token per line for 100% of the lines" in \
        captured.err and "--tokenize char" in captured.err
    assert main(["eval", "self-bleu", "--hyp", str(hyp), "--n", "2"]) == 0
    assert "one token per line" in capsys.readouterr().err


def test_bleu_needs_a_reference_and_a_text_run(poem_run, tmp_path, capsys):
    run, hyp = poem_run
    assert main(["eval", "bleu", "--hyp", str(hyp)]) == 2
    assert "needs --ref FILE, or --run RUN_DIR" in capsys.readouterr().err
    assert main(["eval", "bleu", "--hyp", str(hyp), "--run", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("seqgan-kit: error: ")


def test_list_flags_take_spaces_and_commas_alike(poem_run, capsys):
    _, hyp = poem_run
    outputs = []
    for n in (["2", "3"], ["2,3"], ["3,", "2"][:1] + ["2"]):
        assert main(["eval", "self-bleu", "--hyp", str(hyp), "--tokenize", "char", "--json", "--n", *n]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["self_bleu"])
    assert outputs[0] == outputs[1] == outputs[2] and sorted(outputs[0]) == ["2", "3"]
    assert main(["eval", "self-bleu", "--hyp", str(hyp), "--n", "2,,3"]) == 2
    assert "--n takes a comma-separated list (or a space-separated one)" in capsys.readouterr().err


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("syn") / "run"
    overrides = [a for o in [*TINY, "mle.epochs=1", "oracle.seed=7"] for a in ("--set", o)]
    assert main(["train", RECIPE, *overrides, "--run-dir", str(run)]) == 0
    return run


@pytest.mark.slow
def test_nll_oracle_reads_the_oracle_from_the_run(synthetic_run, tmp_path, capsys):
    samples = tmp_path / "s.txt"
    assert main(["sample", str(synthetic_run), "-n", "40", "--seed", "1", "--out", str(samples)]) == 0
    assert main(["eval", "nll-oracle", "--oracle", str(synthetic_run), "--samples", str(samples), "--json"]) == 0
    from_run = json.loads(capsys.readouterr().out)
    assert main(["eval", "nll-oracle", "--oracle", "7", "--vocab-size", "40", "--emb-dim", "8", "--hidden-dim", "8",
                 "--samples", str(samples), "--json"]) == 0
    by_seed = json.loads(capsys.readouterr().out)
    assert from_run == by_seed and from_run["seq_len"] == 6
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3 4 5 40\n")  # id 40: outside the oracle's vocabulary of 40
    assert main(["eval", "nll-oracle", "--oracle", str(synthetic_run), "--samples", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: ") and "40" in err[0]


@pytest.mark.slow
def test_sample_defaults_to_ten_and_prints_a_seed_that_repeats_the_call(synthetic_run, capsys):
    assert main(["sample", str(synthetic_run)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 10
    seed = int(captured.err.split("add --seed ")[1].split()[0])
    assert main(["sample", str(synthetic_run), "--seed", str(seed)]) == 0
    again = capsys.readouterr()
    assert again.out.splitlines() == lines and again.err == ""


@pytest.mark.slow
def test_version_and_threads(synthetic_run, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"seqgan-kit {__version__}"
    assert main(["sample", str(synthetic_run), "-n", "2", "--seed", "0", "--threads", "1"]) == 0
    assert main(["sample", str(synthetic_run), "-n", "2", "--threads", "-1"]) == 2
    assert "--threads must be >= 0" in capsys.readouterr().err
