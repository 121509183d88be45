"""TextGAN (``algorithm = "textgan"``): Texygen's MMD against a slow double loop, the soft-argmax rollout, the
discriminator against a plain convolution, its loss against a hand computation, and the algorithm end to end on
the tiny synthetic task (learns, resumes exactly, two ranks train like one, bad values refused in one line)."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seqgan_kit.cli import main
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.textgan_discriminator import TextGANDiscriminator
from seqgan_kit.train import textgan
from seqgan_kit.train.mmd import TEXYGEN_SIGMAS, mmd2
from seqgan_kit.train.recipe import load_recipe

from .tiny import RECIPE, TINY, kill_on_call


# --------------------------------------------------------------------------- the MMD
def slow_mmd2(x: torch.Tensor, y: torch.Tensor, sigmas) -> float:
    """Texygen's calc_mmd written out: every pair, every width, float64, the biased means, clamped at 0."""
    x, y = x.double().tolist(), y.double().tolist()

    def kernel_mean(a, b):
        total = 0.0
        for i in range(len(a)):
            for j in range(len(b)):
                d = sum((a[i][k] - b[j][k]) ** 2 for k in range(len(a[i])))
                total += sum(math.exp(-d / (2.0 * s)) for s in sigmas)
        return total / (len(a) * len(b))

    return max(kernel_mean(x, x) + kernel_mean(y, y) - 2.0 * kernel_mean(x, y), 0.0)


@pytest.mark.parametrize("scale", [0.05, 1.0, 8.0])
def test_mmd_equals_the_double_loop(scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g) * scale
    y = torch.randn(6, 5, generator=g) * scale + 0.3 * scale
    y[2] = x[4]  # an exact duplicate across the batches: distance 0, every width counts fully
    assert mmd2(x, y).item() == pytest.approx(slow_mmd2(x, y, TEXYGEN_SIGMAS), rel=1e-5, abs=1e-6)
    assert mmd2(x, y, [2.0, 30.0]).item() == pytest.approx(slow_mmd2(x, y, [2.0, 30.0]), rel=1e-5, abs=1e-6)


def test_mmd_of_equal_batches_is_zero_and_the_clamp_stops_the_gradient():
    x = torch.randn(5, 4, requires_grad=True)
    loss = mmd2(x, x.detach().clone())
    assert loss.item() == 0.0  # k(a, a) = 19 exactly on the diagonals: no rounding from a Gram expansion
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    y = torch.randn(6, 4) + 1.0
    assert mmd2(x, y).item() > 0


# --------------------------------------------------------------------------- the models
def test_soft_argmax_rollout_is_greedy_and_feeds_the_softmax_weighted_embedding(one_thread):
    torch.manual_seed(0)
    gen = LSTMGenerator(30, emb_dim=6, hidden_dim=6, seq_len=5, init_std=0.5)
    z = torch.rand(8, 6) - 0.5
    tokens, soft = gen.soft_argmax_rollout(z, scale=3.0)
    assert tokens.shape == (8, 5) and soft.shape == (8, 5, 6)
    # the same recurrence written out: h_0 = z, c_0 = 0, the start token first, then the soft inputs
    state, x = (z, torch.zeros_like(z)), gen.embedding(torch.zeros(8, dtype=torch.long))
    for t in range(5):
        state = gen.lstm(x[:, None], tuple(s[None] for s in state))[1]
        state = tuple(s[0] for s in state)
        logits = gen.proj(state[0])
        assert torch.equal(tokens[:, t], logits.argmax(-1))
        x = torch.softmax(3.0 * logits, -1) @ gen.embedding.weight
        assert torch.allclose(soft[:, t], x, atol=1e-6)
    # every generator parameter gets a gradient through the soft inputs
    soft.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
    # at Texygen's scale 1000 the soft input is the embedding of the greedy token
    tokens, soft = gen.soft_argmax_rollout(z, scale=1000.0)
    assert torch.allclose(soft, gen.embedding(tokens), atol=1e-4)


def test_discriminator_features_equal_texygens_convolutions(one_thread):
    torch.manual_seed(1)
    disc = TextGANDiscriminator(20, 7, emb_dim=5, filter_sizes=[2, 3, 7], num_filters=[4, 6, 3])
    emb = torch.randn(9, 7, 5)
    x = emb @ disc.proj.weight.t()  # Texygen: x @ W
    pooled = []
    for k, conv in zip(disc.filter_sizes, disc.convs, strict=True):
        kernel = conv.weight.view(-1, k, 5)[:, None]  # [F, 1, k, E]: the conv2d kernel over [B, 1, T, E]
        maps = F.relu(F.conv2d(x[:, None], kernel, conv.bias))  # [B, F, T-k+1, 1]
        pooled.append(maps.amax(dim=(2, 3)))
    assert torch.allclose(disc.features(emb), torch.cat(pooled, 1), atol=1e-5)
    assert disc(emb).shape == (9, 2) and disc.reconstruct(disc.features(emb)).shape == (9, 1)
    with pytest.raises(ValueError, match="fixed-length"):
        TextGANDiscriminator(20, 7, pad_token=0)


# --------------------------------------------------------------------------- end to end
BASE = [o for o in TINY if not o.startswith(("generator.", "mle.epochs"))] + [
    "algorithm=textgan", "runtime.threads=1", "mle.epochs=2", "generator.emb_dim=8", "generator.hidden_dim=8",
    "discriminator.kind=textgan", "discriminator.emb_dim=8", "discriminator.filter_sizes=[2, 3]",
    "discriminator.num_filters=[6, 6]", "textgan.d_pretrain_steps=2", "textgan.epochs=4", "textgan.g_steps=5",
    "textgan.d_steps=2", "textgan.batch_size=16", "textgan.eval_every=1", "textgan.checkpoint_every=1"]


@pytest.fixture(scope="module", autouse=True)
def no_plots():
    """The curves are not under test here; drawing them would take most of these runs' time."""
    from seqgan_kit.runs.rundir import RunDir

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunDir, "plot", lambda self: None)
        yield


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """A built tiny TextGAN run (MLE not run): its experiment and trainer."""
    from seqgan_kit.runs.rundir import RunDir
    from seqgan_kit.train.experiment import Experiment

    torch.set_num_threads(1)
    cfg = load_recipe(RECIPE, BASE)
    exp = Experiment(cfg, RunDir(tmp_path_factory.mktemp("exp")), torch.device("cpu"))
    return exp, textgan.TextGANTrainer(exp)


@pytest.mark.slow  # the first fused Adam imports for seconds
def test_discriminator_loss_equals_texygens_formula_and_a_step_lowers_it(tiny_experiment):
    exp, trainer = tiny_experiment
    gen, disc = exp.generator, trainer.disc
    g = torch.Generator().manual_seed(3)
    real = exp.task.train[:16]
    z = trainer.latent(16, [-0.01, 1.0], g)
    terms = trainer.discriminator_loss(real, z)
    fake, _ = gen.soft_argmax_rollout(z, 1000.0)
    ff, fr = disc.features(gen.embedding(fake)), disc.features(gen.embedding(real))
    s0 = torch.cat([disc(gen.embedding(fake)), disc(gen.embedding(real))])[:, 0].tolist()
    gan = math.log(sum(abs(s0[i] - (1.0 if i < 16 else 0.0)) for i in range(32)))
    z_hat, zs = disc.reconstruct(ff)[:, 0].tolist(), z.tolist()
    recon = -sum((z_hat[b] - zs[b][h]) ** 2 for b in range(16) for h in range(8)) / 16
    mmd = slow_mmd2(ff.detach(), fr.detach(), TEXYGEN_SIGMAS)
    assert terms["gan"].item() == pytest.approx(gan, rel=1e-5)
    assert terms["recon"].item() == pytest.approx(recon, rel=1e-5)
    assert terms["mmd"].item() == pytest.approx(mmd, rel=1e-4, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(gan + 0.1 * mmd + 0.1 * recon, rel=1e-4)
    # the discriminator's update lowers its loss on the same batch; no gradient reaches the generator
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    for _ in range(5):
        opt.zero_grad()
        trainer.discriminator_loss(real, z)["loss"].backward()
        opt.step()
    assert trainer.discriminator_loss(real, z)["loss"].item() < terms["loss"].item()
    assert all(p.grad is None for p in gen.parameters())
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())


@pytest.fixture(scope="module")
def textgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("textgan") / "run"
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(BASE)]) == 0
    return run


@pytest.mark.slow
def test_a_tiny_textgan_run_lowers_the_mmd_and_moves_the_generator(textgan_run):
    from safetensors.torch import load_file

    recs = records(textgan_run)
    assert [r["step"] for r in recs if r["phase"] == "pretrain_d"] == [1, 2]
    adv = [r for r in recs if r["phase"] == "adversarial"]
    assert [r["epoch"] for r in adv] == [0, 1, 2, 3, 4]
    assert {"nll_oracle_z", "nll_oracle", "nll_test"} <= adv[0].keys()
    assert all({"g_mmd", "d_loss", "d_gan", "d_mmd", "d_recon", "nll_oracle_z"} <= r.keys() for r in adv[1:])
    # the generator learns what it is trained for: the feature MMD to the real data falls
    assert adv[-1]["g_mmd"] < 0.9 * adv[1]["g_mmd"], [r["g_mmd"] for r in adv[1:]]
    # through the embedding above all: at Texygen's scale 1000 the float32 soft-argmax is an exact one-hot wherever
    # the top two logits differ by more than ~0.1, and there the LSTM and the projection get no gradient (Texygen
    # too); in this tiny model that is every position
    before = load_file(str(textgan_run / "generator_mle.safetensors"))
    after = load_file(str(textgan_run / "generator.safetensors"))
    key = "model.generator.embedding.weight"
    assert (after[key] - before[key]).abs().max() > 0.05


@pytest.mark.slow
def test_textgan_resumes_exactly_after_a_kill(textgan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, textgan.TextGANTrainer, "discriminator_step", 6)  # in adversarial epoch 2
    assert main(["train", RECIPE, "--run-dir", str(killed), *sets(BASE)]) == 130
    restore()
    full = records(textgan_run)
    assert 0 < len(records(killed)) < len(full)
    assert main(["train", "--resume", str(killed)]) == 0
    assert records(killed) == full


@pytest.mark.slow
def test_sample_works_on_a_textgan_run(textgan_run, capsys):
    assert main(["sample", str(textgan_run), "-n", "3", "--seed", "1"]) == 0
    rows = [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(len(r) == 6 and all(0 <= x < 40 for x in r) for r in rows)


@pytest.mark.parametrize("override, message", [
    ("textgan.g_z_range=[0.5, 0.1]", "textgan.g_z_range: must be [low, high] with low < high, got [0.5, 0.1]"),
    ("textgan.d_z_range=[0.1]", "textgan.d_z_range: must be [low, high] with low < high"),
    ("textgan.sigmas=[1.0, -2.0]", "textgan.sigmas: must be a non-empty list of positive widths"),
    ("textgan.batch_size=1", "textgan.batch_size: must be >= 2"),
    ("textgan.soft_argmax_scale=0", "textgan.soft_argmax_scale: must be positive, got 0"),
    ("textgan.g_lr=nan", "textgan.g_lr: "),
    ("discriminator.emb_dim=16", "discriminator.emb_dim: must equal generator.emb_dim (8)"),
    ("discriminator.filter_sizes=[2, 7]", "discriminator.filter_sizes: filter of width 7 exceeds the sequence "
                                          "length 6 (oracle.seq_len)"),
    ("discriminator.kind=cnn", "discriminator.kind: 'cnn' lacks feature_matching, which algorithm = 'textgan' "
                               "needs of its discriminator (kinds that have it: 'textgan')"),
    ("generator.kind=rmc", "generator.kind: 'rmc' lacks soft_argmax, which algorithm = 'textgan' needs of its "
                           "generator (kinds that have it: 'lstm')"),
])
def test_bad_values_are_refused_up_front_in_one_line(override, message, tmp_path, capsys):
    overrides = BASE + [override]
    if override.startswith("discriminator.kind"):
        overrides = [o for o in overrides if not o.startswith("discriminator.") or o == override]
    if override.startswith("generator.kind"):
        overrides = [o for o in overrides if not o.startswith("generator.")] + [override]
    run = tmp_path / "run"
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(overrides)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not run.exists()


@pytest.mark.slow
def test_two_ranks_train_like_one_process(tmp_path):
    """Greedy tokens, no dropout: given the shared batches and codes a TextGAN update is deterministic, so two
    ranks (gathered features, an odd batch split 8 + 7) give the one-process weights and losses."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    overrides = [o for o in BASE if not o.startswith(("textgan.epochs", "textgan.batch_size"))] + [
        "textgan.epochs=2", "textgan.batch_size=15"]
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "one"), *sets(overrides)]) == 0
    two = subprocess.run([sys.executable, "-m", "seqgan_kit", "train", RECIPE, "--run-dir", str(tmp_path / "two"),
                          "--nproc", "2", *sets(overrides)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr

    def weights(run):
        return {k: v for k, v in load_file(str(run / "checkpoint.safetensors")).items()
                if k.startswith(("model.", "optim."))}

    one_w, two_w = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one_w.keys() == two_w.keys()
    assert max((one_w[k].double() - two_w[k].double()).abs().max().item() for k in one_w) < 1e-5
    mle = load_file(str(tmp_path / "one" / "generator_mle.safetensors"))
    key = "model.generator.embedding.weight"
    assert not torch.equal(mle[key], one_w[key])  # the adversarial phase moved the generator
    last_one, last_two = records(tmp_path / "one")[-1], records(tmp_path / "two")[-1]
    for name in ("g_mmd", "d_loss", "d_gan", "d_mmd", "d_recon", "nll_oracle_z"):
        assert last_two[name] == pytest.approx(last_one[name], rel=1e-4, abs=1e-5), name


def test_variable_length_text_is_refused_naming_data_ending(tmp_path):
    from seqgan_kit.config import ConfigError

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "train.txt").write_text("a b c\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "t"\ntask = "text"\nalgorithm = "textgan"\n[data]\nname = "t"\ndir = "{corpus}"\n'
                      f'tokenizer = "whitespace"\nmax_tokens = 8\n[discriminator]\nkind = "textgan"\n')
    with pytest.raises(ConfigError, match=r"^data.ending: algorithm = 'textgan' needs fixed-length sequences"):
        load_recipe(recipe)
    assert load_recipe(recipe, ['data.ending="pad"']).algorithm == "textgan"


@pytest.mark.parametrize("name", ["synthetic_textgan", "synthetic_textgan_gpu"])
def test_the_textgan_recipes_hold_texygens_settings(name):
    cfg = load_recipe(Path(RECIPE).parent / f"{name}.toml")
    s = cfg.algo
    assert cfg.algorithm == "textgan" and cfg.discriminator.kind == "textgan" and cfg.generator.kind == "lstm"
    assert (cfg.discriminator.filter_sizes, cfg.discriminator.num_filters) == ([2, 3], [100, 200])
    assert cfg.discriminator.emb_dim == cfg.generator.emb_dim == cfg.generator.hidden_dim == 32
    assert (s.d_pretrain_steps, s.g_steps, s.d_steps, s.batch_size) == (240, 100, 45, 64)
    assert (s.g_lr, s.d_lr, s.grad_clip, s.soft_argmax_scale) == (0.01, 1e-4, 5.0, 1000.0)
    assert (s.g_z_range, s.d_z_range, s.d_mmd_weight, s.d_recon_weight) == ([-0.01, 0.01], [-0.01, 1.0], 0.1, 0.1)
    assert tuple(s.sigmas) == TEXYGEN_SIGMAS and len(s.sigmas) == 19
    assert (s.epochs, cfg.mle.epochs) == ((100, 80) if name.endswith("gpu") else (20, 50))


@pytest.mark.slow
def test_bf16_autocast_trains_with_finite_numbers(tmp_path):
    run = tmp_path / "bf16"
    overrides = [o for o in BASE if not o.startswith("textgan.epochs")] + ["textgan.epochs=1",
                                                                          "runtime.precision=bf16"]
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(overrides)]) == 0
    recs = records(run)
    assert recs[-1]["phase"] == "adversarial" and "g_mmd" in recs[-1]
    assert all(math.isfinite(v) for r in recs for v in r.values() if isinstance(v, float))
