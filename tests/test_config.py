from pathlib import Path

import pytest

from seqgan_kit.config import parse_override
from seqgan_kit.errors import UserError
from seqgan_kit.train.recipe import ExperimentConfig, build_config, load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def test_overrides_are_typed():
    cfg = build_config({}, ["algorithm=seqgan", "mle.lr=1e-3", "mle.epochs=7", "seqgan.baseline=true", "name=run1",
                            "discriminator.filter_sizes=[1, 2]", "discriminator.num_filters=[4, 5]"])
    assert cfg.mle.lr == 0.001 and cfg.mle.epochs == 7 and cfg.algo.baseline is True
    assert cfg.name == "run1" and cfg.discriminator.filter_sizes == [1, 2]


def test_int_given_for_float_is_widened_and_numeric_strings_stay_strings():
    cfg = build_config({"mle": {"lr": 1}}, ["oracle.weights=123", "name=1e3"])
    assert cfg.mle.lr == 1.0 and isinstance(cfg.mle.lr, float)
    assert cfg.oracle.weights == "123" and cfg.name == "1e3"


@pytest.mark.parametrize(
    "data, overrides, message",
    [
        ({"mle": {"lrr": 0.1}}, [], "unknown key 'mle.lrr'"),
        ({"nope": 1}, [], "unknown key 'nope'"),
        ({}, ["train.lr=1e-3"], "unknown key 'train'"),
        ({}, ["mle.epochs=1.5"], "mle.epochs: expected an integer"),
        ({}, ["mle.lr=fast"], "mle.lr: expected a number"),
        ({"algorithm": "seqgan"}, ["seqgan.baseline=1"], "seqgan.baseline: expected true or false"),
        ({}, ["seqgan.baseline=true"], "unknown key 'seqgan' .the table of algorithm 'seqgan', this recipe runs 'mle'"),
        ({}, ["mle.lr=nan"], "mle.lr: must be a finite number"),
        ({}, ["mle.lr=-0.01"], "mle.lr: must be positive"),
        ({}, ["generator.kind=transformer"], "generator.kind: unknown generator kind 'transformer'"),
        ({}, ["generator.init_std=-1"], "generator.init_std: must be positive"),
        ({}, ["runtime.threads=-1"], "runtime.threads: must be >= 0"),
        ({}, ["mle.start_from=middle"], "mle.start_from: expected one of"),
        ({"mle": 3}, [], r"mle: expected a table \[mle\]"),
        ({}, ["mle.lr"], "--set expects key=value"),
        ({}, ["mle.batch_size=0"], "mle.batch_size: must be positive"),
        ({}, ["algorithm=gan"], "algorithm: unknown algorithm 'gan' .registered: .*mle, .*seqgan"),
        ({}, ["algorithm=seqgan", "oracle.seq_len=10"], "filter of width 20 exceeds the sequence length 10"),
    ],
)
def test_bad_config_names_the_key(data, overrides, message):
    with pytest.raises(UserError, match=message):
        build_config(data, overrides)


def test_parse_override():
    key, value = parse_override("a.b = 3")
    assert (key, value.value, value.raw) == ("a.b", 3, "3")
    key, value = parse_override("a=some/path.npz")
    assert (key, value.value) == ("a", "some/path.npz")


def test_missing_and_invalid_recipe_files(tmp_path):
    with pytest.raises(UserError, match="recipe not found"):
        load_recipe(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mle\nepochs = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "caf\xe9"')
    with pytest.raises(UserError, match="not UTF-8"):
        load_recipe(latin)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(recipe):
    cfg = load_recipe(recipe)
    assert isinstance(cfg, ExperimentConfig) and cfg.name == recipe.stem
    if cfg.task == "text":  # its card was found and merged
        assert cfg.data.name and Path(cfg.data.card).is_file()


def test_there_are_recipes():
    assert any(p.name == "synthetic_mle.toml" for p in RECIPES)


# ----------------------------------------------------------------------------------------- text corpora
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_corpus_card_fills_data_keys_under_the_recipe_and_the_overrides(tmp_path):
    cards = tmp_path / "corpora"
    cards.mkdir()
    write(cards / "c.toml", 'name = "c"\ntokenizer = "whitespace"\nmax_tokens = 30\nbleu_orders = [2, 3]\n'
                            'description = "for people only"\nsource = "x"\n')
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = write(recipes / "r.toml", 'task = "text"\n[data]\ncard = "../corpora/c.toml"\nmax_tokens = 20\n')
    cfg = load_recipe(recipe, ["data.bleu_orders=[4]"])
    assert (cfg.data.name, cfg.data.tokenizer) == ("c", "whitespace")  # from the card
    assert cfg.data.max_tokens == 20 and cfg.seq_len == 21  # the recipe beats the card; + EOS
    assert cfg.data.bleu_orders == [4]  # --set beats both
    assert Path(cfg.data.card) == recipes / "../corpora/c.toml"
    no_card = load_recipe(recipe, ["data.card="])
    assert no_card.data.tokenizer == "char" and no_card.data.card == ""  # the card is not read at all


def test_bad_cards_and_text_settings_give_errors_naming_the_key(tmp_path):
    card = write(tmp_path / "c.toml", 'name = "c"\nmax_lenght = 30\n')
    with pytest.raises(UserError, match="c.toml: unknown key 'max_lenght'"):
        build_config({"task": "text", "data": {"card": str(card)}})
    with pytest.raises(UserError, match="corpus card not found"):
        build_config({"task": "text", "data": {"card": str(tmp_path / "missing.toml")}})
    with pytest.raises(UserError, match="data.tokenizer: expected one of"):
        build_config({"task": "text", "data": {"tokenizer": "bpe"}})
    with pytest.raises(UserError, match="task: expected one of"):
        build_config({"task": "images"})
    with pytest.raises(UserError, match=r"exceeds the sequence length 11 \(data.max_tokens \+ 1"):
        build_config({"task": "text", "algorithm": "seqgan", "data": {"max_tokens": 10}})
    with pytest.raises(UserError, match="data.bleu_orders"):
        build_config({"task": "text", "data": {"bleu_orders": [7]}})


def test_more_bad_text_settings(tmp_path):
    card = write(tmp_path / "c.toml", 'name = "c"\n')
    assert build_config({"task": "text"}, [f'data.card="{card}"']).data.name == "c"  # a quoted TOML string
    for data, overrides, message in [
        ({"data": "x"}, [], "expected a table"),
        ({"data": {"card": 5}}, [], "data.card: expected a card name or path"),
        ({"task": "text"}, ["eval.bleu_samples=-3"], "eval.bleu_samples"),
        ({"task": "text"}, ["eval.bleu_references=-1"], "eval.bleu_references"),
        ({"task": "text"}, ["eval.test_rows=-5"], "eval.test_rows"),
        ({"algorithm": "seqgan"}, ["seqgan.n_negative=0"], "seqgan.n_negative"),
    ]:
        with pytest.raises(UserError, match=message):
            build_config(data, overrides)
