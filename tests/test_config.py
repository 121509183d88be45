from pathlib import Path

import pytest

from seqgan_kit.config import ExperimentConfig, build_config, load_recipe, parse_override
from seqgan_kit.errors import UserError

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def test_overrides_are_typed():
    cfg = build_config({}, ["mle.lr=1e-3", "mle.epochs=7", "seqgan.baseline=true", "name=run1",
                            "discriminator.filter_sizes=[1, 2]", "discriminator.num_filters=[4, 5]"])
    assert cfg.mle.lr == 0.001 and cfg.mle.epochs == 7 and cfg.seqgan.baseline is True
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
        ({}, ["seqgan.baseline=1"], "seqgan.baseline: expected true or false"),
        ({"mle": 3}, [], r"mle: expected a table \[mle\]"),
        ({}, ["mle.lr"], "--set expects key=value"),
        ({}, ["mle.batch_size=0"], "mle.batch_size: must be positive"),
        ({}, ["algorithm=gan"], "algorithm: expected one of"),
        ({}, ["algorithm=seqgan", "oracle.seq_len=10"], "filter of width 20 exceeds the sequence length 10"),
    ],
)
def test_bad_config_names_the_key(data, overrides, message):
    with pytest.raises(UserError, match=message):
        build_config(data, overrides)


def test_parse_override():
    assert parse_override("a.b = 3") == ("a.b", 3)
    assert parse_override("a=some/path.npz") == ("a", "some/path.npz")


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
    assert isinstance(load_recipe(recipe), ExperimentConfig)


def test_there_are_recipes():
    assert any(p.name == "synthetic_mle.toml" for p in RECIPES)
