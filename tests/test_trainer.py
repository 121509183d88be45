"""The trainer base: algorithms declare what they need of each model role; one loop owns every phase's cadence.

Every registered algorithm is crossed with every registered generator (and discriminator) kind: each pair is
either refused when the recipe is validated, with one line naming both keys, or trains a tiny run through all
its phases (slow)."""

import pytest

from seqgan_kit.cli import main
from seqgan_kit.config import ConfigError
from seqgan_kit.data.data_config import DataConfig
from seqgan_kit.errors import UserError
from seqgan_kit.models.registry import kinds
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.train.recipe import build_config, config_from_run, load_recipe
from seqgan_kit.train.registry import algorithms

from .tiny import RECIPE, TINY

BASE = [o for o in TINY if not o.startswith(("generator.", "mle.epochs"))] + ["mle.epochs=1"]
GENERATOR = {
    "lstm": ["generator.emb_dim=8", "generator.hidden_dim=8"],
    "rmc": ["generator.emb_dim=8", "generator.head_size=4", "generator.num_heads=2"],
    "maskgan": ["generator.emb_dim=8", "generator.hidden_dim=8"],
    "leakgan": ["generator.emb_dim=8", "generator.hidden_dim=8", "generator.goal_size=4", "generator.step_size=3",
                "generator.feature_emb_dim=8", "generator.filter_sizes=[1, 2, 3]", "generator.num_filters=[4, 4, 4]"],
}
DISCRIMINATOR = {
    "cnn": ["discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2, 3]", "discriminator.num_filters=[4, 4, 4]"],
    "relgan": ["discriminator.emb_dim=8", "discriminator.num_rep=2", "discriminator.filter_sizes=[2, 3]",
               "discriminator.num_filters=[4, 4]", "discriminator.fc_dim=4"],
    "textgan": ["discriminator.emb_dim=8", "discriminator.filter_sizes=[2, 3]", "discriminator.num_filters=[4, 4]"],
    "ranker": ["discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2, 3]",
               "discriminator.num_filters=[4, 4, 4]"],
}
ALGORITHM = {
    "seqgan": ["seqgan.d_pretrain_rounds=1", "seqgan.d_pretrain_epochs=1", "seqgan.iterations=1", "seqgan.d_steps=1",
               "seqgan.d_epochs=1", "seqgan.num_rollouts=2", "seqgan.n_negative=32", "seqgan.g_batch_size=8"],
    "gumbel": ["gumbel.steps=1", "gumbel.d_steps=1", "gumbel.batch_size=8"],
    "maskgan": ["maskgan.is_present_rate=0.0", "maskgan.mask_mle_steps=1", "maskgan.steps=1", "maskgan.batch_size=8"],
    "textgan": ["textgan.d_pretrain_steps=1", "textgan.epochs=1", "textgan.g_steps=1", "textgan.d_steps=1",
                "textgan.batch_size=8"],
    "skipthought": ["skipthought.emb_dim=8", "skipthought.dim=8", "skipthought.epochs=1"],
    "leakgan": ["leakgan.pretrain_blocks=1", "leakgan.pretrain_d_rounds=1", "leakgan.pretrain_d_epochs=1",
                "leakgan.pretrain_g_epochs=1", "leakgan.iterations=1", "leakgan.d_steps=1", "leakgan.d_epochs=1",
                "leakgan.num_rollouts=2", "leakgan.n_negative=32", "leakgan.g_batch_size=8"],
    "maligan": ["maligan.d_pretrain_rounds=1", "maligan.iterations=1", "maligan.g_steps=1", "maligan.d_steps=1",
                "maligan.prefixes=4", "maligan.n_negative=32"],
    "rankgan": ["rankgan.d_pretrain_rounds=1", "rankgan.d_pretrain_epochs=1", "rankgan.iterations=1",
                "rankgan.d_steps=1", "rankgan.num_rollouts=2", "rankgan.n_negative=32", "rankgan.g_batch_size=8",
                "rankgan.ref_size=4"],
}

# What the built-in algorithms accept, stated by hand (None: the role is not built, its table is refused).
ACCEPTS = {
    "mle": ({"lstm", "rmc", "leakgan"}, None),
    "seqgan": ({"lstm"}, {"cnn"}),
    "gumbel": ({"lstm", "rmc"}, {"cnn", "relgan"}),
    "maskgan": ({"lstm"}, None),
    "leakgan": ({"leakgan"}, {"cnn"}),
    "maligan": ({"lstm"}, {"cnn"}),
}


def pairs():
    """(algorithm, generator kind or None, discriminator kind or None) for every registered combination: a role
    the algorithm does not build is crossed too (its table must be refused)."""
    out = []
    for algo in sorted(algorithms()):
        for gen in [None, *sorted(kinds("generator"))]:
            for disc in [None, *sorted(kinds("discriminator"))]:
                out.append((algo, gen, disc))
    return out


def overrides(algo, gen, disc):
    """A tiny recipe; a role left None gets its default kind's tiny sizes when the algorithm builds it."""
    out = [*BASE, f"algorithm={algo}", *ALGORITHM.get(algo, [])]
    uses = algorithms()[algo].requires
    if gen is not None:
        out += [f"generator.kind={gen}", *GENERATOR.get(gen, [])]
    elif "generator" in uses:
        out += GENERATOR["lstm"]
    if disc is not None:
        out += [f"discriminator.kind={disc}", *DISCRIMINATOR.get(disc, [])]
    elif "discriminator" in uses:
        out += DISCRIMINATOR["cnn"]
    return out


def outcome(algo, gen, disc):
    """None when the recipe is accepted, else the ConfigError's one line."""
    try:
        load_recipe(RECIPE, overrides(algo, gen, disc))
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("algo,gen,disc", pairs())
def test_every_pair_is_accepted_or_refused_in_one_line_naming_both_keys(algo, gen, disc):
    error = outcome(algo, gen, disc)
    spec = algorithms()[algo]
    if error is None:
        assert gen is None or "generator" in spec.requires
        assert disc is None or "discriminator" in spec.requires
        return
    assert "\n" not in error
    if "task" in error.split(":")[0]:  # a text-only algorithm on the synthetic recipe: refused for its task
        return
    assert algo in error and ("generator" in error or "discriminator" in error), error


@pytest.mark.parametrize("algo", sorted(ACCEPTS))
def test_the_builtin_algorithms_accept_exactly_the_kinds_they_can_train(algo):
    gens, discs = ACCEPTS[algo]
    for gen in ("lstm", "rmc", "maskgan", "leakgan"):
        for disc in [None, "cnn", "relgan"]:
            ok = gen in gens and (disc is None or (discs is not None and disc in discs))
            assert (outcome(algo, gen, disc) is None) == ok, (algo, gen, disc, outcome(algo, gen, disc))


def test_refusals_name_the_missing_capability_and_the_kinds_that_have_it():
    assert outcome("seqgan", "rmc", None) == (
        "generator.kind: 'rmc' lacks prefix_states, which algorithm = 'seqgan' needs of its generator (kinds that "
        "have it: 'lstm')")
    assert outcome("seqgan", None, "relgan").startswith(
        "discriminator.kind: 'relgan' lacks prob_real, which algorithm = 'seqgan' needs of its discriminator")
    assert outcome("mle", "maskgan", None).startswith("generator.kind: 'maskgan' lacks language_model")
    assert outcome("maskgan", None, "relgan") == (
        "discriminator: algorithm = 'maskgan' builds no discriminator: remove the [discriminator] table (or choose "
        "an algorithm that uses one)")
    assert outcome("mle", None, "cnn").startswith("discriminator: algorithm = 'mle' builds no discriminator")


def test_an_algorithm_without_a_discriminator_writes_no_discriminator_table(tmp_path):
    cfg = load_recipe(RECIPE, overrides("mle", None, None))
    assert cfg.discriminator is None and "discriminator" not in cfg.to_dict()
    assert cfg.spec is algorithms()["mle"] and cfg.spec is cfg.spec
    seqgan = load_recipe(RECIPE, overrides("seqgan", None, None)).to_dict()
    assert seqgan["discriminator"]["kind"] == "cnn" and seqgan["seqgan"]["d_lr"] == 1e-4


def test_the_discriminator_training_settings_moved_to_the_algorithm_table():
    moved = (("discriminator.lr=0.001", "seqgan.d_lr"), ("discriminator.batch_size=8", "seqgan.d_batch_size"))
    for key, where in moved:
        with pytest.raises(ConfigError) as err:
            load_recipe(RECIPE, overrides("seqgan", None, None) + [key])
        assert str(err.value).startswith(f"{key.split('=')[0]}: moved: ") and where in str(err.value)
    cfg = load_recipe(RECIPE, overrides("seqgan", None, None) + ["seqgan.d_lr=0.002", "seqgan.d_batch_size=16"])
    assert (cfg.algo.d_lr, cfg.algo.d_batch_size) == (0.002, 16)


def test_a_renamed_key_is_a_one_line_error_naming_the_new_one():
    with pytest.raises(ConfigError, match=r"^seqgan.rollout_num: renamed: set seqgan.num_rollouts instead$"):
        load_recipe(RECIPE, overrides("seqgan", None, None) + ["seqgan.rollout_num=4"])
    with pytest.raises(ConfigError, match=r"^data.max_len: renamed: set data.max_tokens instead$"):
        load_recipe(RECIPE, overrides("mle", None, None) + ["data.max_len=12"])


def test_a_card_with_a_renamed_key_is_refused_naming_the_new_one(tmp_path):
    card = tmp_path / "c.toml"
    card.write_text('name = "c"\ntokenizer = "whitespace"\nmax_len = 30\n')
    with pytest.raises(UserError, match=r"c.toml: key 'max_len' is renamed: write max_tokens instead$"):
        build_config({"task": "text", "data": {"card": str(card), "train": "t.txt"}})


def test_an_old_run_directory_config_is_read_in_the_new_layout():
    old = load_recipe(RECIPE, overrides("seqgan", None, None)).to_dict()
    old["discriminator"].update(lr=0.003, batch_size=24)
    del old["seqgan"]["d_lr"], old["seqgan"]["d_batch_size"]
    old["seqgan"]["rollout_num"] = old["seqgan"].pop("num_rollouts") + 1
    old["data"]["max_len"] = old["data"].pop("max_tokens") + 5
    cfg = config_from_run(old)
    assert (cfg.algo.d_lr, cfg.algo.d_batch_size, cfg.algo.num_rollouts) == (0.003, 24, 3)
    assert cfg.data.max_tokens == DataConfig().max_tokens + 5
    mle = load_recipe(RECIPE, overrides("mle", None, None)).to_dict()
    mle["discriminator"] = {"kind": "cnn", "lr": 1e-4, "batch_size": 64}  # every run dir had one
    assert config_from_run(mle).discriminator is None


def accepted():
    return [p for p in pairs() if outcome(*p) is None]


@pytest.mark.slow
@pytest.mark.parametrize("algo,gen,disc", accepted())
def test_every_accepted_pair_trains_a_tiny_run(algo, gen, disc, tmp_path):
    run = tmp_path / "run"
    args = [a for o in overrides(algo, gen, disc) for a in ("--set", o)]
    assert main(["train", RECIPE, "--run-dir", str(run), "--threads", "1", *args]) == 0
    assert (run / "checkpoint.safetensors").exists()
    assert RunDir(run).read_metrics()
