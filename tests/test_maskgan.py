"""MaskGAN: masks, the in-filler, the actor-critic objective, the LM-to-MaskGAN mapping and the ``maskgan``
algorithm end to end on the tiny synthetic task (train, kill and resume in every stage, sample)."""

import math

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.models.maskgan import (
    LSTMDropout,
    MaskGANDiscriminator,
    MaskGANGenerator,
    run_lstm,
    variational_mask,
)
from seqgan_kit.models.masks import fillable_lengths, make_present, masked_span_length
from seqgan_kit.runs.checkpoint import load_model
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.train import mle
from seqgan_kit.train.experiment import Experiment
from seqgan_kit.train.maskgan import (
    EMA_KEY,
    MaskGANTrainer,
    advantages,
    discounted_returns,
    generator_loss,
    pack_windows,
    update_ema_baselines,
)
from seqgan_kit.train.mle import MLEPretraining
from seqgan_kit.train.recipe import load_recipe

from .conftest import require_shared
from .tiny import RECIPE, TINY, kill_on_call

MASKGAN = TINY + ["algorithm=maskgan", "mle.epochs=2", "maskgan.is_present_rate=0.0", "maskgan.mask_mle_steps=3",
                  "maskgan.steps=3", "maskgan.batch_size=16", "maskgan.eval_every=1", "maskgan.checkpoint_every=1",
                  "maskgan.gen_lr=0.01", "maskgan.critic_lr=0.01", "maskgan.d_pretrain_steps=2"]


def no_plot(self):
    """Curves are not what this file tests; drawing them is most of a tiny run's time."""


@pytest.fixture(autouse=True)
def no_curves(monkeypatch):
    monkeypatch.setattr(RunDir, "plot", no_plot)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: thousands of tiny ops run faster on one thread


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def records(run):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in RunDir(run).read_metrics()]


# --------------------------------------------------------------------------- masks
def full(batch, t):
    return torch.full((batch,), t)


def test_fillable_lengths_are_the_tokens_before_the_first_eos():
    rows = torch.tensor([[5, 6, 2, 0], [2, 0, 0, 0], [5, 6, 7, 8], [5, 2, 7, 2]])
    assert fillable_lengths(rows, 2).tolist() == [2, 0, 4, 1]
    assert fillable_lengths(rows, None).tolist() == [4, 4, 4, 4]  # fixed-length sequences


@pytest.mark.parametrize("rate", [0.5, 0.3, 0.75, 0.0])
def test_contiguous_mask_is_one_span_inside_each_sentence(rate):
    t = 21
    lengths = torch.arange(t + 1).repeat(400)  # every L in 0..T, 400 rows each
    present = make_present(lengths, t, rate, "contiguous", torch.Generator().manual_seed(0))
    masked = ~present
    pos = torch.arange(t).unsqueeze(0)
    assert not (masked & (pos >= lengths[:, None])).any()  # never at or after EOS
    assert present[:, 0].all()  # the span never hides token 0 (the released code's contiguous masks)
    want = torch.tensor([max(min(int((1 - rate) * n), n - 1), 0) for n in lengths.tolist()])
    assert torch.equal(masked.sum(1), want) and torch.equal(masked_span_length(lengths, rate), want)
    starts = masked.int().argmax(1)
    assert torch.equal(masked, (pos >= starts[:, None]) & (pos < (starts + want)[:, None]))  # one span
    for n_tokens in (2, 7, 20):  # the start is uniform over [1, L - n], both ends included
        rows = (lengths == n_tokens) & (want > 0)
        if rows.any():
            assert set(starts[rows].tolist()) == set(range(1, n_tokens - int(want[rows][0]) + 1))


def test_rate_one_half_masks_every_sentence_of_two_tokens_or_more():
    lengths = torch.arange(0, 40).repeat(50)
    present = make_present(lengths, 41, 0.5, "contiguous", torch.Generator().manual_seed(1))
    hit = (~present).any(1)
    assert hit[lengths >= 2].all() and not hit[lengths < 2].any()
    assert ((~present).sum(1) == lengths // 2).all()


def test_coco_caption_lengths_all_get_a_masked_token():
    train = require_shared("corpora", "image_coco", "train.txt")
    lengths = torch.tensor([min(len(line.split()), 37) for line in train.read_text().splitlines()[:5000]])
    present = make_present(lengths, 38, 0.5, "contiguous", torch.Generator().manual_seed(2))
    share = (~present).any(1)[lengths >= 2].float().mean().item()
    assert share == 1.0 and (lengths >= 2).float().mean() > 0.99


def test_random_mask_draws_inside_the_sentence_and_may_hide_token_0():
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([10, 4, 0, 1]).repeat(2000)
    present = make_present(lengths, 12, 0.3, "random", g)
    pos = torch.arange(12).unsqueeze(0)
    inside = pos < lengths[:, None]
    assert present[~inside].all()  # EOS and padding never masked
    assert abs(present[inside].float().mean().item() - 0.3) < 0.02
    assert not present[lengths > 0, 0].all()  # token 0 is masked in some rows
    none = make_present(full(100, 10), 10, 0.0, "random", g)
    assert not none.any()  # rate 0: everything masked, token 0 too
    a = make_present(full(8, 10), 10, 0.5, "random", torch.Generator().manual_seed(3))
    b = make_present(full(8, 10), 10, 0.5, "random", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_windows_pack_the_sentences_into_running_text():
    rows = torch.tensor([[5, 6, 2, 0, 0], [7, 2, 0, 0, 0], [8, 9, 10, 11, 2], [12, 2, 0, 0, 0]])
    windows = pack_windows(rows, 2, 5)  # the stream 5 6 2 7 2 8 9 10 11 2 12 2: 12 tokens
    assert windows.tolist() == [[5, 6, 2, 7, 2], [8, 9, 10, 11, 2]]  # the tail [12, 2] is not a full window
    assert pack_windows(rows, 2, 12).shape == (1, 12) and pack_windows(rows, 2, 13).shape == (0, 13)


# --------------------------------------------------------------------------- the in-filler
def small_generator(**kw):
    torch.manual_seed(0)
    gen = MaskGANGenerator(vocab_size=30, seq_len=8, emb_dim=12, hidden_dim=12, **kw)
    gen.map_from_lm()
    return gen


def test_fill_copies_present_tokens_and_gives_them_no_gradient():
    gen = small_generator()
    real = torch.randint(1, 30, (16, 8))
    present = make_present(full(16, 8), 8, 0.5, "contiguous", torch.Generator().manual_seed(0))
    filled, log_probs = gen.fill(real, present)
    assert torch.equal(filled[present], real[present])
    assert (log_probs[present] == 0).all() and (log_probs[~present] < 0).all()
    # the gradient of every log-probability is the gradient of the masked ones alone
    gen.zero_grad()
    log_probs.sum().backward()
    grads = [p.grad for p in gen.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    everything = torch.ones_like(present)
    filled, log_probs = gen.fill(real, everything)
    assert torch.equal(filled, real) and (log_probs == 0).all()
    gen.zero_grad()
    log_probs.sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.parameters())


def test_fill_log_probs_are_the_teacher_forced_ones_of_the_filled_sequence():
    gen = small_generator()
    real = torch.randint(1, 30, (6, 8))
    present = make_present(full(6, 8), 8, 0.5, "random", torch.Generator().manual_seed(2))
    filled, log_probs = gen.fill(real, present)
    logp = torch.log_softmax(gen.teacher_forced(filled, present), -1).gather(-1, filled.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(log_probs, logp.masked_fill(present, 0.0), atol=1e-5)


def test_variable_length_fill_keeps_eos_and_padding():
    torch.manual_seed(0)
    gen = MaskGANGenerator(vocab_size=30, seq_len=6, start_token=1, eos_token=2, pad_token=0, emb_dim=8, hidden_dim=8)
    real = torch.tensor([[5, 6, 7, 2, 0, 0], [5, 6, 7, 8, 9, 2]])
    present = make_present(fillable_lengths(real, 2), 6, 0.0, "contiguous")
    assert present.tolist() == [[True, False, False, True, True, True], [True, False, False, False, False, True]]
    assert torch.equal(gen.keep_structure(real, present), present)
    filled, _ = gen.fill(real, present)
    assert (filled[:, 1:][~present[:, 1:]] > 2).all() and torch.equal(filled[present], real[present])


# --------------------------------------------------------------------------- the objective
def test_returns_rewards_and_advantages_only_at_masked_positions_and_clipped():
    rewards = torch.tensor([[9.0, -1.0, -2.0, 9.0, -3.0]])
    masked = torch.tensor([[False, True, True, False, True]])
    g = 0.5
    returns = discounted_returns(rewards, masked, g)
    expect = [0.0, -1 + g * -2 + g**3 * -3, -2 + g**2 * -3, 0.0, -3.0]
    assert torch.allclose(returns, torch.tensor([expect]))
    adv = advantages(returns, torch.tensor([[0.0, 5.0, -1.0, 0.0, 4.0]]), masked, clip=5.0)
    assert torch.allclose(adv, torch.tensor([[0.0, -5.0, -2 + 0.25 * -3 + 1.0, 0.0, -5.0]]))  # -7 -> -5 clipped
    log_probs = torch.tensor([[-7.0, -1.0, -2.0, -7.0, -3.0]], requires_grad=True)
    loss = generator_loss(log_probs, adv, masked)
    loss.backward()
    assert torch.equal(log_probs.grad[~masked], torch.zeros(2))
    assert torch.allclose(log_probs.grad, -adv)


def test_critic_trains_only_its_head_by_default():
    torch.manual_seed(0)
    disc = MaskGANDiscriminator(vocab_size=30, emb_dim=8, hidden_dim=8)
    seqs = torch.randint(1, 30, (4, 6))
    present = make_present(full(4, 6), 6, 0.0, "contiguous")
    logits, out = disc(seqs, present)
    assert logits.shape == (4, 6) and out.shape == (4, 7, 8)
    disc.values(out).pow(2).sum().backward()
    trained = {n for n, p in disc.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {"critic.weight", "critic.bias"}
    disc.zero_grad()
    _, out = disc(seqs, present)
    disc.values(out, detach=False).pow(2).sum().backward()
    assert disc.embedding.weight.grad is not None  # critic_trains_discriminator = true


# --------------------------------------------------------------------------- the trainer, built directly
def build_trainer(tmp_path, extra=()):
    cfg = load_recipe(RECIPE, MASKGAN + list(extra))
    exp = Experiment(cfg, RunDir(tmp_path / "run"), torch.device("cpu"))
    MLEPretraining(exp)
    return exp, MaskGANTrainer(exp)


def test_lm_to_maskgan_mapping_reproduces_the_lm(tmp_path):
    exp, trainer = build_trainer(tmp_path)  # untied softmax: the LM's output layer is mapped too
    gen, lm = trainer.gen, trainer.gen.lm
    assert exp.generator is gen and exp.modules["generator"] is gen
    seqs = exp.task.train[:8]
    with torch.no_grad():
        for p in lm.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # an LM unlike the in-filler's own initialisation
        want = torch.log_softmax(lm(seqs), -1)
        trainer.start_infilling()
        assert not gen.attention.combine.weight.any()  # W_c = 0: the attention starts off
        # the decoder from the LM's (zero) initial state gives the LM's next-token distribution
        hidden, _ = gen.decoder(gen.embedding(gen.inputs(seqs)))
        enc, _ = gen.encode(seqs, torch.ones_like(seqs, dtype=torch.bool))
        assert torch.allclose(torch.log_softmax(gen.output_logits(hidden, enc), -1), want, atol=1e-5)
        # the encoder reading the whole sequence has the LM's states
        assert torch.allclose(enc, lm.lstm(lm.embedding(seqs))[0], atol=1e-6)
    assert int(gen.infilling) == 1  # is_present_rate = 0: the in-filler is the sampled model


def test_discriminator_starts_from_the_trained_in_filler(tmp_path):
    exp, trainer = build_trainer(tmp_path, ["maskgan.d_pretrain_steps=0"])
    gen, disc = trainer.gen, trainer.disc
    trainer.start_infilling()
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # an in-filler unlike the LM and the discriminator's initialisation
    own = {k: v.clone() for k, v in disc.state_dict().items() if k.startswith(("head.", "critic."))}
    trainer.d_pretrain(0)  # 0 steps: the mapping alone
    gen_params = dict(gen.named_parameters())
    shared = disc.shared_parameters()
    assert sorted(shared) == sorted(["embedding.weight", "missing", "attention.score.weight",
                                     "attention.combine.weight"] + [f"{m}.{w}_l0" for m in ("encoder", "decoder")
                                                                   for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                             "bias_hh")])
    for name, p in disc.named_parameters():
        if name in shared:
            assert torch.equal(p, gen_params[name]), name
        else:
            assert torch.equal(p, own[name]), name  # its own output head and critic


def test_d_loss_is_the_released_mean_with_chance_ln_2(tmp_path):
    import math

    exp, trainer = build_trainer(tmp_path, ["maskgan.is_present_rate=0.5"])
    trainer.start_infilling()
    with torch.no_grad():
        trainer.disc.head.weight.zero_()
        trainer.disc.head.bias.zero_()  # every logit 0: D(x) = 1/2 on real and filled tokens
    d_loss, c_loss = trainer.discriminator_step(1)
    assert d_loss == pytest.approx(math.log(2), abs=1e-6) and c_loss > 0
    d_loss, c_loss = trainer.discriminator_step(1, pretrain=True)
    assert c_loss == 0.0 and trainer.d_pretrain_optimizer.state and d_loss < 1.0


def test_tied_mapping_and_conditional_runs_sample_the_unconditional_in_filler(tmp_path):
    exp, trainer = build_trainer(tmp_path, ["maskgan.is_present_rate=0.5", "maskgan.tie_softmax=true"])
    gen = trainer.gen
    seqs = exp.task.train[:4]
    assert torch.equal(gen(seqs), gen.lm(seqs))  # the LM until MaskMLE starts
    trainer.start_infilling()
    assert torch.equal(gen.embedding.weight, gen.lm.embedding.weight) and gen.proj is None
    assert torch.equal(gen.out_bias, gen.lm.proj.bias)
    assert int(gen.infilling) == 1  # trained at rate 0.5, sampled with everything masked
    gen.eval()  # no variational dropout
    with torch.no_grad():
        nothing = torch.zeros_like(seqs, dtype=torch.bool)
        assert torch.allclose(gen(seqs), gen.teacher_forced(seqs, nothing), atol=1e-6)
        assert not torch.allclose(gen(seqs), gen.lm(seqs), atol=1e-3)
    assert [id(p) for g in trainer.c_optimizer.param_groups for p in g["params"]] == \
           [id(p) for p in trainer.disc.critic.parameters()]


def test_ema_baseline_update_is_one_moving_average_per_position():
    sums, counts = torch.tensor([0.0, -2.0, -3.0, 0.0]), torch.tensor([0.0, 2.0, 1.0, 0.0])
    first = update_ema_baselines([0.0] * 4, sums, counts, 0.9)
    assert first == pytest.approx([0.0, 0.1 * -1.0, 0.1 * -3.0, 0.0])  # from zeros; unmasked positions kept
    second = update_ema_baselines(first, torch.tensor([0.0, -1.0, 0.0, -4.0]), torch.tensor([0.0, 1.0, 0.0, 2.0]),
                                  0.9)
    assert second == pytest.approx([0.0, 0.9 * -0.1 + 0.1 * -1.0, -0.3, 0.1 * -2.0])


def test_ema_and_no_baseline(tmp_path, monkeypatch):
    exp, trainer = build_trainer(tmp_path, ["maskgan.baseline=ema", "maskgan.baseline_decay=0.5"])
    trainer.start_infilling()
    seen = {}
    real_adv = advantages

    def spy(returns, baseline, masked, clip):
        seen.update(returns=returns, baseline=baseline, masked=masked)
        return real_adv(returns, baseline, masked, clip)

    monkeypatch.setattr("seqgan_kit.train.maskgan.advantages", spy)
    trainer.generator_step(1)
    first = exp.state[EMA_KEY]
    assert len(first) == 6 and first[0] == 0.0 and all(b < 0 for b in first[1:])  # token 0 never masked
    trainer.generator_step(2)
    second = exp.state[EMA_KEY]
    assert second != first and all(b < 0 for b in second[1:])
    # the advantage sums (r_s - b_s) over s >= t: returns of the centred rewards, baseline 0
    assert seen["baseline"] == 0.0 and (seen["returns"][:, 1:] != 0).all()
    monkeypatch.setattr("seqgan_kit.train.maskgan.advantages", real_adv)
    assert trainer.discriminator_step(1)[1] == 0.0  # no critic loss without the critic baseline
    exp, trainer = build_trainer(tmp_path / "none", ["maskgan.baseline=none"])
    trainer.start_infilling()
    loss, reward = trainer.generator_step(1)
    assert loss < 0 and reward < 0 and EMA_KEY not in exp.state  # -log G * (negative A)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def maskgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("maskgan") / "run"
    snapshots = {}
    real_ac = MaskGANTrainer.actor_critic

    def watched(self, start):
        snapshots["before"] = {k: v.clone() for k, v in {**prefixed("g", self.gen), **prefixed("d", self.disc)}.items()}
        real_ac(self, start)
        snapshots["after"] = {k: v.clone() for k, v in {**prefixed("g", self.gen), **prefixed("d", self.disc)}.items()}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MaskGANTrainer, "actor_critic", watched)
        mp.setattr(RunDir, "plot", no_plot)
        assert main(["train", RECIPE, "--run-dir", str(run), *sets(MASKGAN)]) == 0
    return run, snapshots


def prefixed(prefix, module):
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


@pytest.mark.slow  # trains the module's MaskGAN run
def test_maskgan_trains_every_stage(maskgan_run):
    run, snaps = maskgan_run
    recs = records(run)
    assert [r["phase"] for r in recs] == (["pretrain_g"] * 3 + ["mask_mle"] * 4 + ["d_pretrain"] * 2
                                          + ["actor_critic"] * 4)
    assert all("mask_mle_loss" in r for r in recs[4:7])
    assert len({r["lm_masked_ppl"] for r in recs[3:7]}) == 1  # the LM at the same held-out positions
    assert all(r["masked_ppl"] > 1 for r in recs[3:7])
    assert all(set(r) == {"phase", "step", "d_loss"} for r in recs[7:9])  # the in-filler is fixed: no evaluation
    assert all({"d_loss", "critic_loss", "g_loss", "mean_reward", "nll_oracle"} <= set(r) for r in recs[10:])
    before, after = snaps["before"], snaps["after"]
    moved = [k for k in before if not k.endswith("infilling") and not k.startswith("g.lm.")
             and not torch.equal(before[k], after[k])]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("g.lm."))  # the LM is done
    for name in ("g.embedding.weight", "g.decoder.weight_hh_l0", "g.attention.score.weight", "d.head.weight",
                 "d.encoder.weight_ih_l0", "d.critic.weight"):
        assert name in moved
    mle_file = load_file(str(run / "generator_mle.safetensors"))
    mask_mle = load_file(str(run / "generator_maskmle.safetensors"))
    final = load_file(str(run / "generator.safetensors"))
    assert int(mle_file["model.generator.infilling"]) == 0 and int(final["model.generator.infilling"]) == 1
    assert int(mask_mle["model.generator.infilling"]) == 1
    key = "model.generator.decoder.weight_ih_l0"
    assert not torch.equal(mle_file[key], mask_mle[key]) and not torch.equal(mask_mle[key], final[key])
    assert torch.equal(before["g.decoder.weight_ih_l0"], mask_mle[key])  # the MaskMLE baseline: end of stage 2


def test_init_generator_from_an_mle_run_replaces_stage_one(tmp_path, capsys):
    lm_run, run = tmp_path / "mle", tmp_path / "maskgan"
    assert main(["train", RECIPE, "--run-dir", str(lm_run), *sets(TINY + ["algorithm=mle", "mle.epochs=1"])]) == 0
    overrides = MASKGAN + ["maskgan.steps=1", f"init.generator={lm_run}/generator_mle.safetensors"]
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(overrides)]) == 0
    assert "[pretrain_g] skipped" in capsys.readouterr().out
    assert [r["phase"] for r in records(run)][:1] == ["mask_mle"]
    source = load_file(str(lm_run / "generator_mle.safetensors"))
    mask_mle = load_file(str(run / "generator_maskmle.safetensors"))
    assert all(torch.equal(source[k], mask_mle[k.replace("generator.", "generator.lm.", 1)]) for k in source)
    assert not torch.equal(source["model.generator.embedding.weight"], mask_mle["model.generator.embedding.weight"])


@pytest.mark.slow  # trains the module's MaskGAN run
def test_sample_uses_the_in_filler(maskgan_run, capsys):
    run, _ = maskgan_run
    assert main(["sample", str(run), "-n", "4", "--seed", "1"]) == 0
    rows = [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and all(len(r) == 6 and all(0 <= t < 40 for t in r) for r in rows)
    gen, meta, _ = load_model(run)
    assert gen.kind == "maskgan" and int(gen.infilling) == 1
    assert meta["modules"]["discriminator"]["kind"] == "maskgan"
    assert main(["sample", str(run / "generator_mle.safetensors"), "-n", "2"]) == 0  # the LM


@pytest.mark.slow  # trains the module's MaskGAN run
@pytest.mark.parametrize("target,name,n", [
    (mle, "train_epoch", 2),                 # pretrain_g
    (MaskGANTrainer, "mask_mle_step", 2),    # mask_mle
    (MaskGANTrainer, "discriminator_step", 2),  # d_pretrain, step 2
    (MaskGANTrainer, "discriminator_step", 6),  # actor_critic, inside step 2
])
def test_maskgan_resumes_exactly_after_a_kill_in_each_stage(maskgan_run, tmp_path, monkeypatch, target, name, n):
    run, _ = maskgan_run
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, target, name, n)
    assert main(["train", RECIPE, "--run-dir", str(killed), *sets(MASKGAN)]) == 130
    restore()
    assert main(["train", "--resume", str(killed)]) == 0
    assert records(killed) == records(run)
    a, b = load_file(str(killed / "generator.safetensors")), load_file(str(run / "generator.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.parametrize("override,message", [
    ("maskgan.is_present_rate=1.5", "maskgan.is_present_rate"),
    ("maskgan.mask_strategy=blocks", "maskgan.mask_strategy"),
    ("maskgan.baseline=mean", "maskgan.baseline"),
    ("maskgan.discount=1.5", "maskgan.discount"),
    ("maskgan.dis_train_iterations=0", "maskgan.dis_train_iterations: must be positive"),
    ("maskgan.advantage_clip=0", "maskgan.advantage_clip: must be positive"),
    (["generator.hidden_dim=10", "maskgan.tie_softmax=true"], "maskgan.tie_softmax"),
    ("maskgan.is_present_rate=0.9", "masks no token"),
    ("maskgan.d_pretrain_steps=-1", "maskgan.d_pretrain_steps: must be >= 0"),
    ("maskgan.d_pretrain_lr=0", "maskgan.d_pretrain_lr: must be positive"),
    ("maskgan.window_len=1", "maskgan.window_len: must be at least 2"),
    ("maskgan.gen_vd_keep_prob=0", "maskgan.gen_vd_keep_prob: must lie in (0, 1]"),
    ("maskgan.dis_vd_keep_prob=1.5", "maskgan.dis_vd_keep_prob: must lie in (0, 1]"),
    ("maskgan.mask_mle_start_from=first", "maskgan.mask_mle_start_from"),
    ("maskgan.eval_rows=-1", "maskgan.eval_rows: must be >= 0"),
    ("maskgan.windows=true", "maskgan.windows"),
    ("generator.kind=rmc", "generator.kind"),
])
def test_bad_maskgan_values_are_one_line_errors(tmp_path, capsys, override, message):
    extra = override if isinstance(override, list) else [override]
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "r"), *sets(MASKGAN + extra)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


# --------------------------------------------------------------------------- seqgan-kit fill
@pytest.mark.slow  # trains the module's MaskGAN run
def test_fill_cli_fills_the_blanks_of_a_synthetic_run(maskgan_run, capsys):
    run, _ = maskgan_run
    assert main(["fill", str(run), "5 ___ ___ 7 ___ 9", "-n", "5", "--seed", "3"]) == 0
    rows = [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and all(len(r) == 6 and r[0] == 5 and r[3] == 7 and r[5] == 9 for r in rows)
    assert all(0 <= t < 40 for r in rows for t in r)
    assert main(["fill", str(run), "5 ___ ___ 7 ___ 9", "-n", "5", "--seed", "3"]) == 0
    assert [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()] == rows  # seeded
    assert main(["fill", str(run), "5 ___{2} 7 ___ 9", "-n", "5", "--seed", "3"]) == 0  # the same two slots
    assert [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()] == rows


def test_plain_blank_sizings_and_the_language_model_choice():
    from seqgan_kit.infill.filling import fill_best
    from seqgan_kit.infill.templates import parse_template, sizings

    template = parse_template("a ___ b ___{2} c ___")
    assert template.pieces == ["a ", None, " b ", 2, " c ", None, ""]
    assert sizings(template, 5) == [(1, 2, 1), (1, 2, 2), (2, 2, 1)]
    assert sizings(template, 3) == []
    gen = MaskGANGenerator(vocab_size=30, seq_len=6, start_token=1, eos_token=2, pad_token=0, emb_dim=8,
                           hidden_dim=8)
    gen.set_infilling(True)
    rows = torch.tensor([[5, 0, 2, 0, 0, 0], [5, 0, 0, 2, 0, 0], [5, 0, 0, 0, 2, 0]])  # one blank of 1, 2 or 3
    present = rows != 0
    got = fill_best(gen, rows, present, 4, 1.0, torch.Generator().manual_seed(7))
    with torch.no_grad():  # the same fills, then for each sample the sizing the LM likes best, one at a time
        filled, _ = gen.fill(rows.repeat_interleave(4, 0), present.repeat_interleave(4, 0),
                             generator=torch.Generator().manual_seed(7))
        for i in range(4):
            candidates = [filled[s * 4 + i] for s in range(3)]
            scores = [(gen.lm.log_probs(c[None]).sum() / gen.lm.token_mask(c[None]).sum()).item()
                      for c in candidates]
            assert torch.equal(got[i], candidates[max(range(3), key=scores.__getitem__)])


@pytest.mark.slow  # trains the module's MaskGAN run
@pytest.mark.parametrize("text,message", [
    ("5 6 7 8 9 10", "no blank"),
    ("5 ___ 7", "exactly 6 tokens"),
    ("5 ___{3} 7 ___ 9", "exactly 6 tokens"),
    ("5 ___{0} 7 8 9 10", "at least 1 token"),
    ("5 ___ x 7 ___ 9", "token ids and blanks"),
    ("5 ___ 70 7 ___ 9", "outside the vocabulary"),
])
def test_fill_cli_bad_inputs_are_one_line_errors(maskgan_run, capsys, text, message):
    run, _ = maskgan_run
    assert main(["fill", str(run), text]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_fill_cli_refuses_a_generator_that_does_not_fill(tmp_path, capsys):
    run = tmp_path / "mle"
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(TINY + ["mle.epochs=1"])]) == 0
    capsys.readouterr()
    assert main(["fill", str(run), "5 ___ ___ 7 ___ 9"]) == 2
    assert "does not fill blanks" in capsys.readouterr().err


def test_fill_cli_on_a_text_run(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = "a man dog sits on the red bench near park with two cats".split()
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(words[i] for i in torch.randint(0, len(words), (int(n),), generator=g).tolist())
             for n in torch.randint(3, 8, (120,), generator=g)]
    (corpus / "train.txt").write_text("\n".join(lines[:100]) + "\n")
    (corpus / "test.txt").write_text("\n".join(lines[100:]) + "\n")
    run = tmp_path / "run"
    recipe = str(RECIPE).replace("synthetic_mle", "coco_maskgan")
    text = ["data.card=", "data.name=toy", f"data.dir={corpus}", "data.tokenizer=whitespace", "data.max_tokens=10",
            "generator.emb_dim=8", "generator.hidden_dim=8", "mle.epochs=1", "eval.bleu_samples=10",
            "eval.bleu_references=10", "device=cpu", "maskgan.mask_mle_steps=1", "maskgan.steps=1",
            "maskgan.batch_size=8"]
    assert main(["train", recipe, "--run-dir", str(run), *sets(text)]) == 0
    capsys.readouterr()
    assert main(["fill", str(run), "a man ___{1} on the ___{2} bench", "-n", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4
    for line in out:
        toks = line.split()
        assert len(toks) == 8 and toks[:2] == ["a", "man"] and toks[3:5] == ["on", "the"] and toks[7] == "bench"
    # plain blanks are one or more tokens: every sizing within the model's 10 tokens is a candidate
    assert main(["fill", str(run), "a man ___ on the ___ bench", "-n", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6
    for line in out:
        toks = line.split()
        assert 7 <= len(toks) <= 10 and toks[:2] == ["a", "man"] and toks[-1] == "bench" and "on" in toks
    assert main(["fill", str(run), "a ___ " * 6]) == 2
    assert "longer than the model's 10" in capsys.readouterr().err
    # a file of templates: all checked first (a bad line is named), then -n fills each, in order
    templates = tmp_path / "templates.txt"
    templates.write_text("a man ___{1} on the bench\n\nthe ___{1} dog\n")
    assert main(["fill", str(run), "--file", str(templates), "-n", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all(line.startswith("a man") for line in out[:2])
    assert all(line.startswith("the") and line.endswith("dog") for line in out[2:])
    templates.write_text("a man ___ on the bench\nno blank here\n")
    assert main(["fill", str(run), "--file", str(templates)]) == 2
    assert "template 2: no blank" in capsys.readouterr().err
    # a word the training text never had is read as <unk>, and the command says so
    assert main(["fill", str(run), "a zebra ___{1} on the bench"]) == 0
    captured = capsys.readouterr()
    assert "1 token(s) outside the vocabulary read as <unk>: 'zebra'" in captured.err
    assert len(captured.out.splitlines()) == 1


# --------------------------------------------------------------------------- the length-conditional sampler
def length_conditional_generator():
    torch.manual_seed(0)
    gen = MaskGANGenerator(vocab_size=6, seq_len=4, start_token=1, eos_token=2, pad_token=0, emb_dim=8, hidden_dim=8,
                           init_std=0.5)
    seqs = torch.tensor([[3, 2, 0, 0], [4, 2, 0, 0], [3, 5, 2, 0], [3, 4, 5, 2], [5, 5, 4, 2], [3, 3, 3, 2]])
    gen.set_lengths(seqs)  # EOS at positions 1, 1, 2, 3, 3, 3
    gen.set_infilling(True)
    return gen


def all_sequences(gen):
    """Every sequence the model can emit: EOS at position 1..T-1, any non-special token before it, PAD after."""
    body = [t for t in range(gen.vocab_size) if t not in (gen.pad_token, gen.eos_token)]
    rows = []
    for eos_at in range(1, gen.seq_len):
        for tokens in torch.cartesian_prod(*[torch.tensor(body)] * eos_at).reshape(-1, eos_at).tolist():
            rows.append(tokens + [gen.eos_token] + [gen.pad_token] * (gen.seq_len - eos_at - 1))
    return torch.tensor(rows)


def test_set_lengths_is_the_smoothed_eos_position_histogram():
    gen = length_conditional_generator()
    want = torch.tensor([0, 2.5, 1.5, 3.5], dtype=torch.float64) / 7.5
    assert torch.allclose(gen.length_logp.exp().double(), want, atol=1e-6)


def test_length_conditional_likelihood_is_normalised_and_matches_sampling():
    gen = length_conditional_generator()
    rows = all_sequences(gen)  # [84, 4]
    with torch.no_grad():
        logp = gen.log_probs(rows).double().sum(1)  # [84]
        # P(L) at the EOS position, the in-filler's EOS-free distribution before it
        present = gen.keep_structure(rows, torch.zeros_like(rows, dtype=torch.bool))
        fill_lp = torch.log_softmax(gen.teacher_forced(rows, present), -1).gather(-1, rows.unsqueeze(-1)).squeeze(-1)
        eos_at = (rows == gen.eos_token).int().argmax(1)
        want = gen.length_logp[eos_at] + torch.where(present, 0.0, fill_lp).sum(1)
        assert torch.allclose(logp, want.double(), atol=1e-5)
        assert float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-5)  # a distribution over every emittable row
        samples = gen.sample(40000, generator=torch.Generator().manual_seed(0), batch_size=8192)  # [N, T]
    index = {tuple(r): i for i, r in enumerate(rows.tolist())}
    hits = torch.tensor([index[tuple(r)] for r in samples.tolist()])  # every sample is one of the rows
    freq = torch.bincount(hits, minlength=len(rows)).double() / len(samples)
    assert 0.5 * float((freq - logp.exp()).abs().sum()) < 0.04  # total variation (~0.02 expected at 40,000)
    lengths = torch.bincount(eos_at[hits], minlength=4).double() / len(samples)
    assert torch.allclose(lengths, gen.length_logp.exp().double(), atol=0.01)


# --------------------------------------------------------------------------- running-text windows
def toy_text_trainer(tmp_path, extra=()):
    corpus = tmp_path / "corpus"
    corpus.mkdir(parents=True)
    words = "a man dog sits on the red bench near park with two cats".split()
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(words[i] for i in torch.randint(0, len(words), (int(n),), generator=g).tolist())
             for n in torch.randint(1, 9, (60,), generator=g)]
    (corpus / "train.txt").write_text("\n".join(lines[:50]) + "\n")
    (corpus / "test.txt").write_text("\n".join(lines[50:]) + "\n")
    recipe = str(RECIPE).replace("synthetic_mle", "coco_maskgan")
    text = ["data.card=", "data.name=toy", f"data.dir={corpus}", "data.tokenizer=whitespace", "data.max_tokens=10",
            "generator.emb_dim=8", "generator.hidden_dim=8", "device=cpu", "maskgan.batch_size=32", *extra]
    cfg = load_recipe(recipe, text)
    exp = Experiment(cfg, RunDir(tmp_path / "run"), torch.device("cpu"))
    MLEPretraining(exp)
    return exp, MaskGANTrainer(exp)


@pytest.mark.slow  # builds two text experiments
def test_sentence_and_window_batches(tmp_path):
    exp, trainer = toy_text_trainer(tmp_path / "sentences")
    eos = trainer.gen.eos_token
    real, present, _ = trainer.batch()
    lengths = fillable_lengths(real, eos)
    assert real.shape == (32, 11)
    assert torch.equal((~present).sum(1), lengths // 2)  # int(0.5 L) inside each sentence
    assert present[torch.arange(11) >= lengths[:, None]].all()
    exp, trainer = toy_text_trainer(tmp_path / "windows", ["maskgan.windows=true", "maskgan.window_len=7"])
    real, present, _ = trainer.batch()
    stream = exp.task.train[exp.task.train != trainer.gen.pad_token]  # the sentences with their EOS, in order
    assert real.shape == (32, 7) and torch.equal(trainer.windows.reshape(-1), stream[: trainer.windows.numel()])
    assert present[real == eos].all() and not (real == trainer.gen.pad_token).any()  # EOS given, no padding
    masked = ~present  # one span of int(0.5 * 7) = 3 tokens after token 0, less the EOS it covers
    first = masked.int().argmax(1)
    last = 6 - masked.flip(1).int().argmax(1)
    assert present[:, 0].all() and (masked.sum(1) <= 3).all() and (last - first < 3)[masked.any(1)].all()
    assert (masked.sum(1) == 3).float().mean() > 0.3


# --------------------------------------------------------------------------- variational dropout
def _literal_lstm(lstm, x, m_in, m_h):
    """The LSTM written out gate by gate (PyTorch's order i, f, g, o), with the masks where the released
    VariationalDropoutWrapper puts them: on the input and on the h carried to the next step."""
    b, t, _ = x.shape
    h = c = torch.zeros(b, lstm.hidden_size)
    outs = []
    for s in range(t):
        gates = (x[:, s] * m_in) @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + (h * m_h) @ lstm.weight_hh_l0.T \
            + lstm.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, dim=1), h, c


def test_variational_dropout_masks_the_input_and_the_carried_state_with_one_mask_per_sequence():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 6, batch_first=True)
    x = torch.randn(3, 5, 6)
    drop = LSTMDropout.draw(lstm, 3, 0.5, x)
    assert drop.inputs is drop.state  # one tensor for both when the widths agree, as the released wrapper
    assert set(drop.state.unique().tolist()) <= {0.0, 2.0} and drop.outputs.shape == (3, 6)
    outs, (h, c) = run_lstm(lstm, x, None, drop)
    ref, ref_h, ref_c = _literal_lstm(lstm, x, drop.inputs, drop.state)
    assert torch.allclose(outs, ref, atol=1e-6) and torch.allclose(h[0], ref_h, atol=1e-6)
    assert torch.allclose(c[0], ref_c, atol=1e-6)
    ones = LSTMDropout(torch.ones(3, 6), torch.ones(3, 6), torch.ones(3, 6))
    assert torch.allclose(run_lstm(lstm, x, None, ones)[0], lstm(x)[0], atol=1e-6)  # the loop is the LSTM
    wide = LSTMDropout.draw(torch.nn.LSTM(4, 6), 3, 0.5, x)
    assert wide.inputs.shape == (3, 4) and wide.state.shape == (3, 6)
    keep = variational_mask(20000, 10, 0.34, x)
    assert (keep == 0).float().mean().item() == pytest.approx(0.66, abs=0.01)
    assert keep.mean().item() == pytest.approx(1.0, abs=0.02)  # unbiased: kept units scaled by 1 / keep


def test_variational_dropout_acts_only_in_training_mode_and_draws_from_the_global_stream():
    torch.manual_seed(0)
    gen = MaskGANGenerator(30, 7, emb_dim=8, hidden_dim=8, vd_keep_prob=0.5)
    plain = MaskGANGenerator(30, 7, emb_dim=8, hidden_dim=8)
    plain.load_state_dict(gen.state_dict())
    seqs = torch.randint(1, 30, (4, 7))
    present = torch.rand(4, 7) < 0.5
    gen.eval()
    assert torch.equal(gen.teacher_forced(seqs, present), plain.eval().teacher_forced(seqs, present))
    gen.train()
    torch.manual_seed(1)
    a = gen.teacher_forced(seqs, present)
    torch.manual_seed(1)
    b = gen.teacher_forced(seqs, present)
    assert torch.equal(a, b) and not torch.allclose(a, plain.teacher_forced(seqs, present), atol=1e-3)
    torch.manual_seed(1)
    filled, log_probs = gen.fill(seqs, present)
    assert torch.equal(filled[present], seqs[present]) and log_probs.requires_grad
    disc = MaskGANDiscriminator(30, 8, 8, vd_keep_prob=0.5)
    disc.map_from_infiller(gen)
    disc.eval()
    logits, _ = disc(filled, present)
    disc.train()
    assert not torch.allclose(disc(filled, present)[0], logits, atol=1e-4)


def test_the_held_out_masked_perplexity_is_the_in_fillers_and_the_lms_at_the_same_masked_positions(tmp_path):
    exp, trainer = build_trainer(tmp_path, ["maskgan.eval_rows=16", "maskgan.gen_vd_keep_prob=0.5"])
    trainer.start_infilling()
    gen = trainer.gen
    gen.eval()
    got = trainer.held_out_masked_nll()
    rows, present, _ = trainer._held_out
    test = {tuple(r) for r in exp.task.test.tolist()}
    assert rows.shape[0] == 16 and all(tuple(r) in test for r in rows.tolist()) and (~present).any()
    assert not torch.equal(rows, exp.task.test[:16])  # a seeded draw, not the first rows
    nll = lm_nll = 0.0
    count = 0
    with torch.no_grad():
        for i in range(16):  # row by row, position by position
            tf = torch.log_softmax(gen.teacher_forced(rows[i:i + 1], present[i:i + 1])[0], -1)  # [T, V]
            lm = torch.log_softmax(gen.lm(rows[i:i + 1])[0] + gen.fill_bias, -1)  # [T, V]
            for t in range(rows.shape[1]):
                if not present[i, t]:
                    nll -= float(tf[t, rows[i, t]])
                    lm_nll -= float(lm[t, rows[i, t]])
                    count += 1
    assert got["masked_ppl"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert got["lm_masked_ppl"] == pytest.approx(math.exp(lm_nll / count), rel=1e-5)
    gen.train()
    assert trainer.held_out_masked_nll() != got  # training mode: dropout (the trainer evaluates in eval mode)
    _, again, _ = trainer._held_out
    assert torch.equal(again, present)  # the masks are drawn once


def test_mask_mle_start_from_best_continues_from_the_lowest_held_out_masked_perplexity(tmp_path, monkeypatch):
    scripted = iter([10.0, 8.0, 9.0, 12.0])  # steps 0..3: the best is step 1
    snaps = {}
    real_report = MaskGANTrainer._mask_mle_report

    def report(self, step, metrics):
        snaps[step] = {k: v.clone() for k, v in self.gen.state_dict().items()}
        real_report(self, step, metrics)

    monkeypatch.setattr(MaskGANTrainer, "held_out_masked_nll", lambda self: {"masked_ppl": next(scripted)})
    monkeypatch.setattr(MaskGANTrainer, "_mask_mle_report", report)
    monkeypatch.setattr(RunDir, "plot", no_plot)
    run = tmp_path / "best"
    assert main(["train", RECIPE, "--run-dir", str(run),
                 *sets(MASKGAN + ["maskgan.mask_mle_start_from=best", "maskgan.steps=0"])]) == 0
    kept = load_file(str(run / "generator_maskmle.safetensors"))
    best = load_file(str(run / "generator_maskmle_best.safetensors"))
    key = "model.generator.decoder.weight_ih_l0"
    assert torch.equal(kept[key], best[key]) and torch.equal(kept[key], snaps[1]["decoder.weight_ih_l0"])
    assert not torch.equal(kept[key], snaps[3]["decoder.weight_ih_l0"])
