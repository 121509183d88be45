"""What ships with the package: recipes and corpus cards installed with it, found by name, listed and shown."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.packaged import find_recipe, packaged_dir, recipe_paths, recipe_summary

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_covers_every_subpackage_and_maps_the_two_folders():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "seqgan_kit").rglob("__init__.py")}
    listed = set(cfg["packages"])
    assert on_disk <= listed, f"add to pyproject's packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"seqgan_kit.recipes", "seqgan_kit.corpora"}
    assert cfg["package-dir"] == {"seqgan_kit.recipes": "recipes", "seqgan_kit.corpora": "corpora"}


def test_a_source_checkout_finds_the_top_level_folders():
    assert packaged_dir("recipes") == ROOT / "recipes" and packaged_dir("corpora") == ROOT / "corpora"
    assert [p.stem for p in recipe_paths()] == sorted(p.stem for p in (ROOT / "recipes").glob("*.toml"))
    assert (ROOT / "corpora" / "README.md").is_file()


def test_recipes_are_found_by_name_and_a_miss_names_close_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ here: the name alone must do
    assert find_recipe("poetry_mle") == ROOT / "recipes" / "poetry_mle.toml"
    assert find_recipe("poetry_mle.toml") == ROOT / "recipes" / "poetry_mle.toml"
    with pytest.raises(UserError, match=r"close names: poetry_mle\b"):
        find_recipe("poetry_mel")
    with pytest.raises(UserError, match="recipe not found: nothing/here.toml"):
        find_recipe("nothing/here.toml")


def test_recipe_summaries_are_one_short_line():
    assert recipe_summary(ROOT / "recipes" / "synthetic_maskgan.toml").startswith("MaskGAN (Fedus et al. 2018) on")
    assert all(len(recipe_summary(p)) <= 96 and "\n" not in recipe_summary(p) for p in recipe_paths())


def test_recipes_command_lists_one_line_per_recipe(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(recipe_paths())
    assert any(line.split()[0] == "poetry_mle" and "quatrains" in line for line in lines[1:])


def test_train_print_config_resolves_recipe_card_and_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "poetry_mle", "--print-config", "--set", "mle.epochs=3"]) == 0
    cfg = tomllib.loads(capsys.readouterr().out)
    assert cfg["name"] == "poetry_mle" and cfg["mle"]["epochs"] == 3
    assert cfg["data"]["tokenizer"] == "char" and cfg["data"]["card"].endswith("poetry_quatrain5.toml")
    assert not list(tmp_path.iterdir())  # nothing written


def test_data_show_prints_the_card_and_the_source_file_it_needs(capsys, tmp_path):
    assert main(["data", "show", "poetry_quatrain5", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'eval_tokenizer = "char"' in out
    assert "source  shi.txt: https://raw.githubusercontent.com/geek-ai/Texygen/" in out
    assert f"{tmp_path}/poetry_quatrain5/train.txt  (missing)" in out
    assert main(["data", "show", "poetry_quatrian5"]) == 2
    assert "close names: poetry_quatrain5" in capsys.readouterr().err


@pytest.mark.slow
def test_a_non_editable_install_carries_recipes_and_corpora(tmp_path):
    src = tmp_path / "src"
    for name in ("seqgan_kit", "recipes", "corpora"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "--target", str(target), str(src)], check=True, capture_output=True, timeout=300)
    assert (target / "seqgan_kit" / "recipes" / "poetry_mle.toml").is_file()
    assert (target / "seqgan_kit" / "corpora" / "poetry_quatrain5.toml").is_file()
    assert (target / "seqgan_kit" / "corpora" / "README.md").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-m", "seqgan_kit", "train", "poetry_seqgan", "--print-config"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f'card = "{target}/seqgan_kit/corpora/poetry_quatrain5.toml"' in out.stdout
    listed = subprocess.run([sys.executable, "-m", "seqgan_kit", "recipes"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and f"{target}/seqgan_kit/recipes" in listed.stdout


OPTIONAL = ("scipy", "gensim", "datasets", "tensorboard")


def test_the_core_works_without_any_optional_package():
    """Import the whole core, build the CLI, pool sentence vectors and score BLEU with scipy, gensim, datasets
    and tensorboard unimportable (as in an install without extras)."""
    code = ("import sys\n"
            f"BLOCKED = {OPTIONAL!r}\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in BLOCKED:\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import numpy as np\n"
            "import seqgan_kit.api, seqgan_kit.train.runner, seqgan_kit.encoders.loading, seqgan_kit.runs.textmodel\n"
            "from seqgan_kit.cli.main import build_parser\n"
            "from seqgan_kit.encoders.sentence import pool\n"
            "from seqgan_kit.metrics import bleu\n"
            "build_parser()\n"
            "x, _ = pool([['a', 'b'], ['b']], {'a': 0, 'b': 1}, np.eye(2))\n"
            "print(x.tolist(), round(bleu([['a', 'b']], [['a', 'b']], 2), 6))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[0.5, 0.5], [0.0, 1.0]] 1.0"


def _without(monkeypatch, *packages):
    """Make seqgan-kit's optional imports (errors.require_extra) fail for ``packages``; modules already
    imported stay (re-importing datasets would re-register pyarrow types)."""
    import importlib

    real = importlib.import_module

    def blocked(name, *args, **kwargs):
        if name.split(".")[0] in packages:
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", blocked)


@pytest.mark.parametrize(("package", "recipe", "overrides", "extra"), [
    ("datasets", "coco_mle.toml", ["data.hf_dataset=some/dataset"], "hf"),
    ("gensim", "coco_word2vec.toml", [], "encoders"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys, package, recipe, overrides, extra):
    _without(monkeypatch, package)
    args = [a for o in overrides for a in ("--set", o)]
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "recipes" / recipe), *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqgan-kit: error: ")
    assert err[0].endswith(f"needs the optional package {package!r}: pip install 'seqgan-kit[{extra}]'")
    assert not run.exists()
