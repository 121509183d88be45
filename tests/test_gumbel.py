"""Gumbel-softmax GANs: the relaxation, beta schedules, GAN losses, the one-hot discriminator paths, the RMC
generator, RelGAN's discriminator and the ``gumbel`` algorithm end to end on the tiny synthetic task."""

import json
import math

import pytest
import torch

from seqgan_kit.cli import main
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.gumbel import gumbel_noise, inverse_temperature
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator
from seqgan_kit.models.rmc_generator import RMCGenerator
from seqgan_kit.train import gumbel
from seqgan_kit.train.gan_losses import gan_losses
from seqgan_kit.train.mle import mle_loss

from .tiny import RECIPE, TINY, kill_on_call

CHI2_999 = {4: 18.467, 9: 27.877}  # chi-square quantiles at 0.999


# --------------------------------------------------------------------------- the relaxation
def test_gumbel_max_samples_follow_the_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    n = 40000
    draws = (logits + gumbel_noise((n, 5), generator=g)).argmax(-1)
    expected = torch.softmax(logits, 0) * n
    chi2 = ((torch.bincount(draws, minlength=5) - expected) ** 2 / expected).sum().item()
    assert chi2 < CHI2_999[4]


def test_rollout_hard_tokens_are_samples_of_the_generator(one_thread):
    torch.manual_seed(1)
    gen = LSTMGenerator(10, emb_dim=4, hidden_dim=4, seq_len=2, init_std=0.5)
    n = 20000
    hard, soft = gen.gumbel_rollout(n, beta=3.0, generator=torch.Generator().manual_seed(2))
    assert hard.shape == (n, 2) and soft.shape == (n, 2, 10)
    expected = torch.softmax(gen.logits(gen.initial_state(1))[0], 0).detach() * n
    chi2 = ((torch.bincount(hard[:, 0], minlength=10) - expected) ** 2 / expected).sum().item()
    assert chi2 < CHI2_999[9]
    # the relaxed one-hot's mode is the hard token: both come from the same perturbed logits
    assert torch.equal(soft.argmax(-1), hard)
    assert torch.allclose(soft.sum(-1), torch.ones(n, 2))


def test_variable_length_rollout_masks_after_eos():
    torch.manual_seed(3)
    gen = LSTMGenerator(8, emb_dim=4, hidden_dim=4, seq_len=6, start_token=1, eos_token=2, pad_token=0)
    with torch.no_grad():
        gen.proj.bias[2] += 2.0  # EOS early and often
    hard, soft = gen.gumbel_rollout(64, beta=2.0)
    assert (hard[:, -1][hard[:, :-1].eq(2).sum(1) == 0] == 2).all()
    after = gen.eos_seen(hard).roll(1, dims=1)
    after[:, 0] = False
    assert (hard[after] == 0).all() and (soft[after] == 0).all()
    assert torch.allclose(soft[~after].sum(-1), torch.ones((~after).sum()))
    assert (soft[..., [0, 1]] == 0).all()  # never PAD or the start token


@pytest.mark.parametrize("kind", ["lstm", "rmc"])
@pytest.mark.parametrize("disc_kind", ["cnn", "relgan"])
def test_the_relaxed_path_passes_a_gradient_from_d_into_every_generator_parameter(kind, disc_kind, one_thread):
    torch.manual_seed(4)
    v, t = 12, 5
    gen = (LSTMGenerator(v, emb_dim=4, hidden_dim=6, seq_len=t) if kind == "lstm"
           else RMCGenerator(v, seq_len=t, emb_dim=4, head_size=4, num_heads=2))
    disc = (CNNDiscriminator(v, t, emb_dim=4, filter_sizes=[1, 2], num_filters=[3, 3]) if disc_kind == "cnn"
            else RelGANDiscriminator(v, t, emb_dim=8, num_rep=4, filter_sizes=[2, 3], num_filters=[3, 3], fc_dim=5))
    for p in disc.parameters():
        p.requires_grad_(False)
    real = torch.randint(0, v, (16, t))
    _, soft = gen.gumbel_rollout(16, beta=2.0)
    _, g_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), "rsgan")
    g_loss.backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------- beta schedules
def test_beta_schedules_equal_relgans_formulas():
    b, n = 1000.0, 5000
    cases = {
        ("const", 17): b,
        ("lin", 0): 1.0, ("lin", 4999): b, ("lin", 1000): 1 + 1000 / 4999 * 999,
        ("exp", 0): 1.0, ("exp", 2500): math.sqrt(1000), ("exp", 3000): 1000 ** 0.6,
        ("log", 0): 1.0, ("log", 99): 1 + 999 * math.log(100) / math.log(5000),
        ("sigmoid", 2500): 500.5, ("sigmoid", 0): 999 / (1 + math.exp(10)) + 1,
        ("quad", 4999): b, ("quad", 100): 999 * 100 ** 2 / 4999 ** 2 + 1,
        ("sqrt", 4999): b, ("sqrt", 400): 999 * 20 / math.sqrt(4999) + 1,
    }
    for (schedule, i), want in cases.items():
        assert inverse_temperature(schedule, b, i, n) == pytest.approx(want, rel=1e-12), (schedule, i)
    # RelGAN's N = 5000 quirk: 3,000 steps never reach beta_max (exp: 1000^0.6 = 63.1), the default horizon
    assert gumbel.GumbelConfig().anneal_horizon == 5000
    assert inverse_temperature("exp", 1000.0, 3000) == pytest.approx(63.0957, rel=1e-5)
    assert inverse_temperature("exp", 1000.0, 3000, horizon=3000) == pytest.approx(1000.0)


# --------------------------------------------------------------------------- GAN losses
def test_gan_losses_equal_hand_computed_values():
    r, f = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    want = {
        "rsgan": ((sp(-0.5) + sp(3.0)) / 2, (sp(0.5) + sp(-3.0)) / 2),
        "standard": ((sp(-1.0) + sp(2.0)) / 2 + (sp(0.5) + sp(1.0)) / 2, (sp(-0.5) + sp(-1.0)) / 2),
        "hinge": ((0.0 + 3.0) / 2 + (1.5 + 2.0) / 2, -0.75),
    }
    for loss, (d_want, g_want) in want.items():
        d, g = gan_losses(r, f, loss)
        assert d.item() == pytest.approx(d_want, rel=1e-6) and g.item() == pytest.approx(g_want, rel=1e-6), loss


# --------------------------------------------------------------------------- discriminators
@pytest.mark.parametrize("pad", [None, 0])
def test_cnn_scores_ids_and_hard_one_hots_identically(pad):
    torch.manual_seed(5)
    v, t = 11, 7
    disc = CNNDiscriminator(v, t, emb_dim=6, filter_sizes=[1, 2, 3], num_filters=[4, 5, 6], pad_token=pad).eval()
    ids = torch.randint(1, v, (9, t))
    if pad is not None:
        ids[0, 3:] = 0
        ids[1, 1:] = 0
    onehots = torch.nn.functional.one_hot(ids, v).float()
    assert torch.equal(disc(ids), disc(onehots))
    assert torch.equal(disc.gan_logits(ids), disc(ids)[:, 1] - disc(ids)[:, 0])
    if pad is not None:  # zero rows after EOS read as padding, like the one-hot of PAD
        zeroed = onehots.clone()
        zeroed[ids == 0] = 0
        assert torch.allclose(disc(zeroed), disc(ids), atol=1e-6)


def test_relgan_discriminator_shape_one_hots_and_masking(one_thread):
    torch.manual_seed(6)
    v = 13
    disc = RelGANDiscriminator(v, 10, emb_dim=16, num_rep=8, filter_sizes=[2, 3, 4], num_filters=[5, 5, 5],
                               fc_dim=7, pad_token=0).eval()
    ids = torch.randint(1, v, (4, 10))
    ids[0, 5:] = 0  # length 5
    ids[1, 2:] = 0  # length 2, shorter than two filters
    scores = disc(ids)
    assert scores.shape == (4, 8)
    assert torch.equal(scores, disc(torch.nn.functional.one_hot(ids, v).float()))
    # more or less padding after a sequence does not change its score
    wider = torch.cat([ids, torch.zeros(4, 6, dtype=torch.long)], dim=1)
    assert torch.allclose(disc(wider)[:2], scores[:2], atol=1e-6)
    assert torch.allclose(disc(ids[:2, :6])[:1], scores[:1], atol=1e-6)
    zeroed = torch.nn.functional.one_hot(ids, v).float()
    zeroed[ids == 0] = 0
    assert torch.allclose(disc(zeroed), scores, atol=1e-6)
    fixed = RelGANDiscriminator(v, 10, emb_dim=64, num_rep=64).train()  # paper sizes
    assert fixed(torch.randint(0, v, (3, 10))).shape == (3, 64)


# --------------------------------------------------------------------------- the RMC generator
def test_rmc_state_shapes_incremental_matches_teacher_forcing_and_mle_lowers_the_loss(one_thread):
    torch.manual_seed(7)
    v, t = 15, 6
    gen = RMCGenerator(v, seq_len=t, emb_dim=8, mem_slots=2, head_size=4, num_heads=3)
    state = gen.initial_state(5)
    assert state.shape == (5, 2, 12) and gen.logits(state).shape == (5, v)
    assert gen.advance(torch.zeros(5, dtype=torch.long), state).shape == (5, 2, 12)
    seqs = gen.sample(5)
    assert seqs.shape == (5, t)
    logits = gen(seqs)  # [5, T, V]
    state, steps = gen.initial_state(5), []
    for i in range(t):
        steps.append(gen.logits(state))
        state = gen.advance(seqs[:, i], state)
    assert torch.allclose(torch.stack(steps, 1), logits, atol=1e-5)
    batch = torch.randint(0, v, (16, t))
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    before = mle_loss(gen, batch)
    opt.zero_grad()
    before.backward()
    opt.step()
    assert mle_loss(gen, batch).item() < before.item()


# --------------------------------------------------------------------------- end to end
BASE = [o for o in TINY if not o.startswith(("generator.", "mle.epochs"))] + [
    "algorithm=gumbel", "runtime.threads=1", "mle.epochs=1", "gumbel.steps=3", "gumbel.d_steps=2",
    "gumbel.batch_size=8", "gumbel.eval_every=1", "gumbel.checkpoint_every=1", "gumbel.beta_max=10",
    "gumbel.anneal_horizon=3"]
KINDS = {
    "lstm": ["generator.kind=lstm", "generator.emb_dim=8", "generator.hidden_dim=8", "discriminator.kind=cnn",
             "discriminator.emb_dim=8", "discriminator.filter_sizes=[1, 2, 3]", "discriminator.num_filters=[4, 4, 4]"],
    "rmc": ["generator.kind=rmc", "generator.emb_dim=8", "generator.head_size=8", "generator.num_heads=2",
            "discriminator.kind=relgan", "discriminator.emb_dim=8", "discriminator.num_rep=8",
            "discriminator.filter_sizes=[2, 3]", "discriminator.num_filters=[4, 4]", "discriminator.fc_dim=6"],
}


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


@pytest.fixture(scope="module", params=["lstm", "rmc"])
def gumbel_run(request, tmp_path_factory):
    run = tmp_path_factory.mktemp(request.param) / "run"
    overrides = BASE + KINDS[request.param]
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(overrides)]) == 0
    return run, overrides


def test_gumbel_trains_logs_and_changes_every_generator_parameter(gumbel_run):
    from safetensors.torch import load_file

    run, _ = gumbel_run
    adv = [r for r in records(run) if r["phase"] == "adversarial"]
    assert [r["step"] for r in adv] == [0, 1, 2, 3]
    assert all({"g_loss", "d_loss", "beta", "nll_oracle", "nll_test"} <= r.keys() for r in adv[1:])
    # RelGAN's order: step 1 at the variable's initial 1, step i >= 2 at beta(i - 2)
    assert [r["beta"] for r in adv[1:]] == pytest.approx([1.0, 1.0, 10 ** (1 / 3)])
    before = load_file(str(run / "generator_mle.safetensors"))
    after = load_file(str(run / "generator.safetensors"))
    assert before.keys() == after.keys()
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_gumbel_resumes_exactly_after_a_kill(gumbel_run, tmp_path, monkeypatch):
    run, overrides = gumbel_run
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, gumbel.GumbelTrainer, "discriminator_step", 4)  # inside step 2
    assert main(["train", RECIPE, "--run-dir", str(killed), *sets(overrides)]) == 130
    restore()
    assert records(killed)[-1] == {**records(run)[len(records(killed)) - 1]}
    assert main(["train", "--resume", str(killed)]) == 0
    assert records(killed) == records(run)


def test_sample_works_on_a_gumbel_run(gumbel_run, capsys):
    run, _ = gumbel_run
    assert main(["sample", str(run), "-n", "3", "--seed", "1"]) == 0
    rows = [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(len(r) == 6 and all(0 <= x < 40 for x in r) for r in rows)


@pytest.mark.parametrize("override, message", [
    ("gumbel.beta_max=0", "gumbel.beta_max: must be positive, got 0"),
    ("gumbel.schedule=cosine", "gumbel.schedule: expected one of"),
    ("gumbel.loss=wgan", "gumbel.loss: expected one of 'rsgan', 'standard', 'hinge', got 'wgan'"),
    ("discriminator.filter_sizes=[2, 7]", "discriminator.filter_sizes: filter of width 7 exceeds the sequence "
                                          "length 6 (oracle.seq_len)"),
])
def test_bad_input_is_a_one_line_config_error(override, message, tmp_path, capsys):
    for kind in KINDS:
        overrides = BASE + KINDS[kind] + [override]
        if "filter_sizes" in override:
            overrides.append("discriminator.num_filters=[4, 4]")
        assert main(["train", RECIPE, "--run-dir", str(tmp_path / kind), *sets(overrides)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / kind).exists() or not any((tmp_path / kind).iterdir())


def test_variable_length_relaxed_path_gives_finite_gradients(one_thread):
    torch.manual_seed(8)
    v, t = 9, 6
    for gen in (LSTMGenerator(v, emb_dim=4, hidden_dim=4, seq_len=t, start_token=1, eos_token=2, pad_token=0),
                RMCGenerator(v, seq_len=t, emb_dim=4, head_size=4, num_heads=2, start_token=1, eos_token=2,
                             pad_token=0)):
        for disc in (CNNDiscriminator(v, t, emb_dim=4, filter_sizes=[1, 2], num_filters=[3, 3], pad_token=0),
                     RelGANDiscriminator(v, t, emb_dim=4, num_rep=4, filter_sizes=[2], num_filters=[3], fc_dim=3,
                                         pad_token=0)):
            gen.zero_grad()
            hard, soft = gen.gumbel_rollout(32, beta=5.0)
            real = gen.sample(32)
            d_loss, g_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), "standard")
            g_loss.backward()
            grads = [p.grad for p in gen.parameters()]
            assert all(g is not None and torch.isfinite(g).all() for g in grads)
            assert all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["synthetic_gumbel_lstm", "synthetic_relgan", "synthetic_relgan_paper",
                                  "synthetic_relgan_gpu", "coco_relgan", "coco_relgan_cpu", "poetry_relgan_cpu",
                                  "obama_relgan_cpu"])
def test_the_gumbel_recipes_load(name):
    from pathlib import Path

    from seqgan_kit.train.recipe import load_recipe

    cfg = load_recipe(Path(RECIPE).parent / f"{name}.toml")
    assert cfg.algorithm == "gumbel" and cfg.algo.loss == "rsgan" and cfg.algo.schedule == "exp"
    assert cfg.generator.kind == ("lstm" if name == "synthetic_gumbel_lstm" else "rmc")
    assert cfg.discriminator.kind == ("cnn" if name == "synthetic_gumbel_lstm" else "relgan")
    if name.endswith("gpu"):
        assert (cfg.algo.steps, cfg.algo.anneal_horizon, cfg.mle.epochs) == (3000, 5000, 150)
        assert (cfg.generator.head_size, cfg.discriminator.num_rep) == (256, 64)
    if name == "coco_relgan":
        assert cfg.algo.beta_max == 100 and cfg.task == "text"
    # RelGAN's schedules (oracle_relgan.py, coco_relgan.py): MLE Adam 1e-2 from the last epoch, N = 5000 with
    # 3,000 (oracle) or 2,000 (COCO) steps: the CPU variants keep the end-of-run exponent 0.6 or 0.4
    assert cfg.mle.lr == 0.01 and cfg.mle.start_from == "last" and cfg.eval.nll_gen
    ratio = 0.6 if cfg.task == "synthetic" else 0.4
    assert (cfg.algo.steps - 1) / cfg.algo.anneal_horizon == pytest.approx(ratio, abs=0.002)
    if name in ("synthetic_relgan_paper", "synthetic_relgan_gpu", "coco_relgan"):
        paper_steps = 3000 if cfg.task == "synthetic" else 2000
        assert (cfg.algo.steps, cfg.algo.anneal_horizon, cfg.mle.epochs) == (paper_steps, 5000, 150)
    if cfg.task == "text":
        assert cfg.data.ending == "pad" and cfg.seq_len == cfg.data.max_tokens
    if cfg.generator.kind == "rmc":
        assert cfg.generator.init == cfg.discriminator.init == "relgan"
