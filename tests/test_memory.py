"""Each model kind estimates its own memory (parameters counted on the meta device, activations by the kind), a
recipe whose models cannot fit is refused before any data is read, and a checkpoint's declared sizes are checked
before its model is built."""

import time

import pytest
import torch

from seqgan_kit import device
from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.models import registry
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.maskgan import MaskGANDiscriminator, MaskGANGenerator
from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator
from seqgan_kit.models.rmc_generator import RMCGenerator
from seqgan_kit.runs.checkpoint import load_model, module_tensors, save_checkpoint
from seqgan_kit.train.experiment import check_memory, memory_needs
from seqgan_kit.train.recipe import load_recipe

from .tiny import RECIPE, TINY

GB = 10**9
KINDS = [
    lambda: LSTMGenerator(50, 8, 16, 7),
    lambda: RMCGenerator(50, 7, emb_dim=8, mem_slots=2, head_size=4, num_heads=2),
    lambda: MaskGANGenerator(50, 7, emb_dim=8, hidden_dim=8),
    lambda: CNNDiscriminator(50, 7, 8, [1, 2, 3], [4, 5, 6]),
    lambda: RelGANDiscriminator(50, 7, 8, 2, [2, 3], [4, 4], fc_dim=5),
    lambda: MaskGANDiscriminator(50, 8, 8),
]


@pytest.mark.parametrize("build", KINDS)
def test_meta_device_counts_the_parameters_of_the_real_module_and_draws_nothing(build):
    state = torch.random.get_rng_state()
    meta = registry.meta_build(build)
    assert torch.equal(torch.random.get_rng_state(), state)  # building on the meta device draws nothing
    real = build()
    assert all(p.is_meta for p in meta.parameters())
    assert registry.parameter_bytes(meta) == 4 * sum(p.numel() for p in real.parameters())
    one, two = registry.memory_estimate(meta, 1), registry.memory_estimate(meta, 2)
    assert one["training state"] == 3 * one["parameters"]
    assert 0 < one["activations"] and two["activations"] == 2 * one["activations"]  # linear in the batch


def test_the_lstm_estimate_is_what_a_batch_keeps_per_position():
    gen = registry.meta_build(lambda: LSTMGenerator(5000, 32, 32, 20))
    assert gen.activation_bytes(64) == 4 * 64 * 20 * (3 * 5000 + 32 + 6 * 32)


@pytest.fixture
def limit_16gb(monkeypatch):
    monkeypatch.setattr(device, "memory_limit", lambda: 16 * GB)


def test_a_recipe_whose_models_cannot_fit_is_refused_before_any_work(limit_16gb, tmp_path, capsys):
    run = tmp_path / "r"
    args = [a for o in [*TINY, "oracle.vocab_size=1000000000"] for a in ("--set", o)]
    started = time.perf_counter()
    assert main(["train", RECIPE, "--run-dir", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the run needs about" in err and "more than this machine's 16.0 GB" in err
    assert "generator parameters 68.0 GB" in err and "oracle parameters 68.0 GB" in err, err
    assert time.perf_counter() - started < 10 and not run.exists()


def test_a_text_length_of_100000_is_refused_before_the_corpus_is_read(limit_16gb):
    cfg = load_recipe(RECIPE.replace("synthetic_mle", "coco_mle"), ["data.max_tokens=100000"])
    with pytest.raises(UserError, match=r"^the run needs about 23\.3 GB \(generator activations 23\.3 GB\)"):
        check_memory(cfg)  # the least vocabulary the config allows: already too much for 16 GB
    with pytest.raises(UserError, match=r"generator activations 383\.9 GB"):
        check_memory(cfg, vocab=4700)  # once the vocabulary is known
    assert sum(memory_needs(cfg, 64, vocab=4700).values()) > 300 * GB
    check_memory(load_recipe(RECIPE.replace("synthetic_mle", "coco_mle")))  # the real recipe fits
    check_memory(load_recipe(RECIPE.replace("synthetic_mle", "coco_mle")), vocab=4700)


def test_the_seqgan_discriminator_counts_too(limit_16gb):
    cfg = load_recipe(RECIPE, [*TINY, "algorithm=seqgan", "oracle.seq_len=20000"])
    parts = memory_needs(cfg, 64)
    assert parts["discriminator activations"] > parts["generator activations"] > 0
    with pytest.raises(UserError, match="discriminator activations"):
        check_memory(cfg)


def checkpoint_with(tmp_path, args, kind="lstm"):
    gen = LSTMGenerator(40, 8, 8, 6)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, module_tensors("generator", gen), {"modules": {"generator": {"kind": kind, "args": args}}})
    return path


@pytest.mark.parametrize("change,message", [
    ({"vocab_size": 10**9}, "its generator needs about 68.0 GB (generator parameters 68.0 GB)"),
    ({"hidden_dim": [8, 8]}, "hidden_dim must be a whole number from 0 to 1,099,511,627,776, got [8, 8]"),
    ({"seq_len": 6.5}, "seq_len must be a whole number"),
    ({"emb_dim": True}, "emb_dim must be a whole number"),
    ({"emb_dim": 2**50}, "emb_dim must be a whole number from 0 to"),
    ({"eos_token": "x"}, "eos_token must be a whole number"),
])
def test_a_checkpoint_declaring_absurd_sizes_is_refused_before_its_model_is_built(limit_16gb, tmp_path, change,
                                                                                  message):
    args = {**LSTMGenerator(40, 8, 8, 6).config(), **change}
    path = checkpoint_with(tmp_path, args)
    started = time.perf_counter()
    with pytest.raises(UserError) as err:
        load_model(path)
    assert time.perf_counter() - started < 5  # nothing of that size was allocated
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_checkpoint_of_seqgan_kit_0_1_naming_the_length_max_len_still_loads(tmp_path):
    gen = LSTMGenerator(40, 8, 8, 6)
    args = gen.config()
    args["max_len"] = args.pop("seq_len")
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, module_tensors("generator", gen), {"modules": {"generator": {"kind": "lstm", "args": args}}})
    loaded, _, _ = load_model(path)
    assert loaded.seq_len == 6 and torch.equal(loaded.embedding.weight, gen.embedding.weight)


def test_a_checkpoint_whose_arguments_are_not_a_table_is_refused(tmp_path):
    with pytest.raises(UserError, match="its arguments are list, not a table"):
        load_model(checkpoint_with(tmp_path, [40, 8, 8]))
    load_model(checkpoint_with(tmp_path, LSTMGenerator(40, 8, 8, 6).config()))  # the real one loads


def test_a_corpus_padded_past_memory_is_refused_before_its_vocabulary_or_rows_are_made(monkeypatch, tmp_path):
    """``data.max_tokens`` far beyond the examples: the padded rows alone would not fit, refused in one line
    naming the longest example, before vocab.json is written or any row allocated (it once ran out of memory)."""
    from seqgan_kit.data.corpus import prepare_text_data
    from seqgan_kit.data.data_config import DataConfig

    monkeypatch.setattr(device, "memory_limit", lambda: 5 * 10**6)  # 5 MB
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.txt").write_text("a b c\nb c\nc a b a\n")
    (tmp_path / "c" / "test.txt").write_text("a b\n")
    cfg = DataConfig(name="tiny", dir=str(tmp_path / "c"), max_tokens=100_000)
    with pytest.raises(UserError, match=r"^data\.max_tokens = 100,000 needs about .* 4 examples are padded to "
                                        r"100,001 ids each; lower data\.max_tokens \(the longest training "
                                        r"example has 4 tokens\)$"):
        prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda _: None)
    assert not (tmp_path / "run" / "vocab.json").exists()
    fits = prepare_text_data(DataConfig(name="tiny", dir=str(tmp_path / "c"), max_tokens=50_000), tmp_path / "ok",
                             seed=0, log=lambda _: None)  # 4 x 50,001 ids x 17 bytes = 3.4 MB
    assert fits.train.shape == (3, 50_001)
