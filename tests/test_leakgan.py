"""LeakGAN: the generator against a loop transliterating the official teacher-forced graph, sampling against
teacher forcing, the rank rescaling against a plain loop, the rollout, the leak, refused configs, and (slow)
end-to-end runs: a tiny run learns, exact resume after a kill."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from seqgan_kit.config import ConfigError
from seqgan_kit.errors import UserError
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.leakgan_generator import LeakGANGenerator
from seqgan_kit.rl.leakgan_rewards import rescaled_activation, segment_rollout_rewards
from seqgan_kit.train import leakgan
from seqgan_kit.train.recipe import load_recipe
from seqgan_kit.train.runner import check_world, train

from .tiny import RECIPE, TINY, kill_on_call

pytestmark = pytest.mark.usefixtures("one_thread")  # thousands of tiny ops (see conftest)

V, T, C = 30, 8, 4
SIZES = dict(emb_dim=8, hidden_dim=8, goal_size=4, step_size=C, feature_emb_dim=6, filter_sizes=[1, 2, 3],
             num_filters=[3, 4, 5])


def model(seed=0, **kw):
    sizes = {**SIZES, **kw}
    torch.manual_seed(seed)
    gen = LeakGANGenerator(V, seq_len=T, **sizes).double()
    torch.manual_seed(seed + 1)
    disc = CNNDiscriminator(V, T, 6, sizes["filter_sizes"], sizes["num_filters"]).double()
    gen.sync_features(disc)
    return gen, disc


def official_pretrain_graph(gen, x):
    """The official ``preTrain`` while-loop (LeakGANModel.py) step by step, i = 0 .. T: returns the token
    probabilities [B, T, V], the Manager's loss terms (sub_feature, real_goal_array) and the Worker's reward terms
    (all_sub_features, all_sub_goals)."""
    b, t = x.shape
    c, d, h = gen.step_size, gen.feature_dim, gen.hidden_dim
    wh = wc = mh = mc = torch.zeros(b, h, dtype=torch.float64)
    last_goal = torch.zeros(b, d, dtype=torch.float64)
    real_goal = gen.goal_init.expand(b, d)
    x_t = gen.embedding(torch.zeros(b, dtype=torch.long))  # start token 0
    feature_array, probs, real_goal_array, sub_feature = [], [], [real_goal], []
    all_sub_features, all_sub_goals = [], []
    for i in range(t + 1):
        cur = torch.full_like(x, gen.unfilled)
        cur[:, :i] = x[:, :i]
        feature = gen.leak.features(cur)
        feature_array.append(feature)
        mh, mc = torch.lstm_cell(feature, (mh, mc), gen.manager.weight_ih_l0, gen.manager.weight_hh_l0,
                                 gen.manager.bias_ih_l0, gen.manager.bias_hh_l0)
        sub_goal = F.normalize(gen.manager_out(mh), dim=1, eps=1e-6)
        if i > 0:
            wh, wc = torch.lstm_cell(x_t, (wh, wc), gen.worker.weight_ih_l0, gen.worker.weight_hh_l0,
                                     gen.worker.bias_ih_l0, gen.worker.bias_hh_l0)
        o_t = (wh @ gen.worker_out.permute(0, 2, 1).reshape(h, -1)).view(b, V, gen.goal_size)  # [B, V, K]
        o_t = o_t + gen.worker_out_bias.t()
        real_sub_goal = last_goal + sub_goal if i > 0 else real_goal
        if i > 0:
            all_sub_goals.append(real_goal)
        w_g = F.normalize(real_goal @ gen.goal_proj, dim=1, eps=1e-6)
        logits = (o_t @ w_g.unsqueeze(2)).squeeze(2)
        if i > 0:
            probs.append(torch.softmax(logits, dim=1))
        if i % c == 0 and i > 0:
            sub_feature.append(feature - feature_array[i - c])
        if i > 0:
            back = i % c if i % c > 0 else c
            all_sub_features.append(feature - feature_array[i - back])
        if i % c == 0 and 0 < i and i // c < t // c:
            real_goal_array.append(real_sub_goal)
        x_t = gen.embedding(x[:, i - 1]) if i > 0 else x_t
        last_goal, real_goal = (real_sub_goal, real_goal) if i % c > 0 else (torch.zeros_like(last_goal),
                                                                             real_sub_goal)
    stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731
    return (stack(probs), stack(sub_feature), stack(real_goal_array), stack(all_sub_features),
            stack(all_sub_goals))


def test_teacher_forcing_matches_the_official_graph_step_by_step():
    gen, _ = model()
    x = torch.randint(0, V, (5, T))
    with torch.no_grad():
        out = gen.teacher_forced(x)
        probs, sub_feature, goal_array, all_feats, all_goals = official_pretrain_graph(gen, x)
    assert torch.allclose(torch.softmax(out.logits, -1), probs, atol=1e-12)
    cos = lambda a, b: (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)  # noqa: E731
    assert torch.allclose(leakgan.goal_cosines(out, C), cos(sub_feature, goal_array), atol=1e-12)
    assert torch.allclose(leakgan.intrinsic_rewards(out, C), cos(all_feats, all_goals), atol=1e-12)


def test_every_prefix_feature_at_once_matches_one_cnn_pass_per_prefix():
    gen, _ = model(5, filter_sizes=[1, 2, 3, 8], num_filters=[3, 4, 5, 2])
    x = torch.randint(0, V, (6, T))
    with torch.no_grad():
        fast = gen.prefix_features(x)  # [B, T+1, D]
        slow = gen.features(gen.unfilled_prefixes(x).reshape(-1, T)).view(6, T + 1, -1)
    assert torch.allclose(fast, slow, atol=1e-12)
    assert torch.allclose(slow[:, T], gen.leak.features(x), atol=1e-12)  # the whole sequence
    assert torch.allclose(slow[:, 0], slow[0, 0].expand(6, -1))  # the empty prefix: one feature for every row


def test_step_by_step_generation_gives_the_teacher_forced_distribution():
    gen, _ = model(3)
    x = torch.randint(0, V, (6, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        forced = torch.log_softmax(gen(x), dim=-1)  # [B, T, V]
        state = gen.initial_state(6)
        for t in range(T):
            assert torch.allclose(torch.log_softmax(gen.logits(state), -1), forced[:, t], atol=1e-12)
            if t + 1 < T:
                state = gen.advance(x[:, t], state)


def test_variable_length_text_samples_end_at_eos_and_teacher_forcing_agrees_up_to_it():
    torch.manual_seed(0)
    gen = LeakGANGenerator(V, seq_len=T, start_token=0, eos_token=1, pad_token=2, **SIZES)
    gen.worker_out_bias.data[:, 1] += 2.0  # EOS likely: rows end early
    x = gen.sample(8, generator=torch.Generator().manual_seed(0))
    assert (x == 1).any(dim=1).all() and not (x == 0).any()
    mask = gen.token_mask(x)
    assert torch.equal(x[~mask], torch.full_like(x[~mask], 2))  # PAD after EOS only
    with torch.no_grad():
        forced = torch.log_softmax(gen(x), dim=-1)
        state, steps = gen.initial_state(8), []
        for t in range(T):
            steps.append(torch.log_softmax(gen.logits(state), -1))
            if t + 1 < T:
                state = gen.advance(x[:, t], state)
    stepped = torch.stack(steps, dim=1)  # [B, T, V]
    assert torch.allclose(stepped[mask], forced[mask], atol=1e-5)
    rewards = segment_rollout_rewards(gen, lambda s: (s == 2).float().mean(1), x, num_rollouts=2)
    ended = gen.eos_seen(x)[:, C - 1]  # rows whose first segment holds EOS: their rollouts are all PAD after it
    assert torch.allclose(rewards[ended, 0], (x[ended] == 2).float().mean(1))


def test_the_leak_is_the_discriminators_feature_and_takes_no_gradient():
    gen, disc = model()
    x = torch.randint(0, V, (4, T))
    assert torch.allclose(gen.features(x), disc.features(x), atol=1e-12)
    assert not any(p.requires_grad for p in gen.leak.parameters())
    out = gen.teacher_forced(x, detach_goals=True)
    F.cross_entropy(out.logits.reshape(-1, V), x.reshape(-1)).backward()
    assert all(p.grad is None for p in gen.manager_parameters())
    assert all(p.grad is not None for p in gen.worker_parameters())
    with pytest.raises(ValueError, match="shape"):
        gen.sync_features(CNNDiscriminator(V, T, 7, [1, 2, 3], [3, 4, 5]))


def slow_rescale(rewards, delta):
    """The official ``rescale``, its values visited in ascending order (what its ranks mean)."""
    b, n = rewards.shape
    out = torch.zeros(b, n)
    for k in range(n):
        column = [float(v) for v in rewards[:, k]]
        rank = {v: i + 1 for i, v in enumerate(sorted(set(column)))}
        for j, v in enumerate(column):
            out[j, k] = 1 / (1 + math.exp(-(rank[v] / b * delta - delta / 2)))
    return out


def test_rescaled_activation_matches_the_loop_with_ties():
    torch.manual_seed(0)
    rewards = torch.rand(16, 5)
    rewards[3, 1] = rewards[7, 1]  # a tie
    rewards[:, 4] = 0.25  # all equal
    fast = rescaled_activation(rewards, 16.0)
    assert torch.allclose(fast, slow_rescale(rewards, 16.0), atol=1e-6)
    assert fast[3, 1] == fast[7, 1]
    assert torch.argmax(fast[:, 0]) == torch.argmax(rewards[:, 0])


def test_rollout_rewards_keep_each_prefix_and_score_the_last_segment_alone():
    gen, _ = model()
    samples = torch.randint(0, V, (3, T))
    seen = []

    def prob_real(seqs):
        seen.append(seqs.clone())
        return seqs[:, -1].double() / V  # a deterministic score of the last token

    rewards = segment_rollout_rewards(gen, prob_real, samples, num_rollouts=4)
    assert rewards.shape == (3, T // C)
    assert len(seen) == T // C
    rollouts = seen[0]  # from the prefix of c tokens: 4 rollouts x 3 rows
    assert rollouts.shape == (12, T)
    assert torch.equal(rollouts[:, :C], samples[:, :C].repeat(4, 1))
    assert torch.allclose(rewards[:, 0], (rollouts[:, -1].double() / V).view(4, 3).mean(0).float())
    assert torch.allclose(rewards[:, -1], samples[:, -1].float() / V)


def test_adversarial_losses_follow_the_official_formulas_and_the_papers():
    torch.manual_seed(0)
    b, n = 4, T // C
    rewards, cos_goal = torch.rand(b, n), torch.rand(b, n) * 2 - 1
    intrinsic, logp = torch.rand(b, T) * 2 - 1, -torch.rand(b, T) * 3
    everything = torch.ones(b, n, dtype=torch.bool), torch.ones(b, T, dtype=torch.bool)
    manager, worker = leakgan.adversarial_losses(rewards, cos_goal, intrinsic, logp, *everything, "batch_mean")
    # official: goal_loss = -sum(reward * (1 - cosine_distance)) / (T B / c), cosine_distance one batch mean
    official_goal = -(rewards * cos_goal.mean()).sum() / (T * b / C)
    official_worker = -(intrinsic.mean() * logp).sum() / (T * b)  # Worker_Reward (one number) x log-likelihood
    assert torch.allclose(manager, official_goal) and torch.allclose(worker, official_worker)
    manager, worker = leakgan.adversarial_losses(rewards, cos_goal, intrinsic, logp, *everything, "elementwise")
    loop_goal = -sum(rewards[i, k] * cos_goal[i, k] for i in range(b) for k in range(n)) / (b * n)
    loop_worker = -sum(intrinsic[i, t] * logp[i, t] for i in range(b) for t in range(T)) / (b * T)
    assert torch.allclose(manager, loop_goal) and torch.allclose(worker, loop_worker)
    tokens = torch.arange(T).expand(b, T) < 5  # text: the tokens up to EOS only
    _, masked = leakgan.adversarial_losses(rewards, cos_goal, intrinsic, logp, everything[0], tokens, "elementwise")
    assert torch.allclose(masked, -(intrinsic[:, :5] * logp[:, :5]).mean())


TINY_LEAKGAN = TINY + [
    "algorithm=leakgan",
    "oracle.seq_len=8",
    "mle.epochs=0",
    "generator.kind=leakgan",
    "generator.goal_size=4",
    "generator.feature_emb_dim=8",
    "generator.filter_sizes=[1, 2, 3]",
    "generator.num_filters=[4, 4, 4]",
    "discriminator.kind=cnn",
    "discriminator.emb_dim=8",
    "discriminator.filter_sizes=[1, 2, 3]",
    "discriminator.num_filters=[4, 4, 4]",
    "discriminator.dropout_keep=1.0",
    "discriminator.l2_reg=0.0",
    "leakgan.pretrain_blocks=2",
    "leakgan.pretrain_d_rounds=1",
    "leakgan.pretrain_d_epochs=1",
    "leakgan.pretrain_g_epochs=3",
    "leakgan.iterations=3",
    "leakgan.d_steps=1",
    "leakgan.d_epochs=1",
    "leakgan.num_rollouts=2",
    "leakgan.n_negative=64",
    "leakgan.g_batch_size=16",
    "leakgan.d_lr=0.001",
    "leakgan.mle_every=2",
    "leakgan.eval_every=1",
    "leakgan.checkpoint_every=1",
    "runtime.threads=1",
]


@pytest.mark.parametrize("override, key", [
    ("generator.step_size=3", "generator.step_size"),
    ("generator.num_filters=[4, 4, 5]", "generator.num_filters"),
    ("leakgan.cosine_reduction=sum", "leakgan.cosine_reduction"),
    ("leakgan.num_rollouts=0", "leakgan.num_rollouts"),
    ("leakgan.delta=-1", "leakgan.delta"),
    ("generator.kind=lstm", "generator.kind"),
])
def test_bad_config_values_are_refused_before_any_work(override, key):
    with pytest.raises(ConfigError) as err:
        load_recipe(RECIPE, TINY_LEAKGAN + [override])
    assert key in str(err.value) and "\n" not in str(err.value)


def test_several_ranks_are_refused_up_front():
    cfg = load_recipe(RECIPE, TINY_LEAKGAN)
    with pytest.raises(UserError, match="runs in one process"):
        check_world(cfg, 2)


def test_the_shipped_recipes_load():
    from pathlib import Path

    recipes = Path(RECIPE).parent
    paper = load_recipe(str(recipes / "synthetic_leakgan.toml"), [])
    cpu = load_recipe(str(recipes / "synthetic_leakgan_cpu.toml"), [])
    assert paper.algo.iterations == 800 and paper.algo.pretrain_blocks == 10 and paper.mle.epochs == 0
    assert cpu.generator.num_filters == cpu.discriminator.num_filters


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def leakgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("leakgan") / "run"
    train(RECIPE, TINY_LEAKGAN, run_dir=str(run))
    return run


@pytest.mark.slow
def test_a_tiny_run_learns_and_logs_every_phase(leakgan_run):
    recs = records(leakgan_run)
    assert [(r["phase"], r["step"] if "step" in r else r["epoch"]) for r in recs] == [
        ("pretrain_g", 0), ("pretrain_interleaved", 1), ("pretrain_interleaved", 2),
        ("adversarial", 1), ("adversarial", 2), ("adversarial", 3)]
    start, pretrained = recs[0], recs[2]
    assert pretrained["nll_test"] < start["nll_test"] - 0.15  # measured: 3.70 -> 3.3
    assert pretrained["nll_oracle"] < start["nll_oracle"] - 0.15
    adv = [r for r in recs if r["phase"] == "adversarial"]
    assert all(0 <= r["mean_reward"] <= 1 and -1 <= r["intrinsic_reward"] <= 1 for r in adv)
    assert "g_loss" in adv[1] and "g_loss" not in adv[0]  # the interleaved MLE epoch of iteration 2
    assert all(math.isfinite(r["nll_oracle"]) for r in adv)


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(leakgan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, leakgan.LeakGANTrainer, "generator_step", 2)
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, TINY_LEAKGAN, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(leakgan_run)


@pytest.mark.slow
def test_resume_inside_the_interleaved_pretraining(leakgan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, leakgan.LeakGANTrainer, "pretrain_epoch", 4)  # block 2's first epoch
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, TINY_LEAKGAN, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(leakgan_run)


@pytest.mark.slow
def test_a_tiny_text_run_trains_through_every_phase(tmp_path, capsys):
    from pathlib import Path

    from .conftest import require_shared

    poems = require_shared("corpora", "poetry_quatrain5")
    recipe = str(Path(RECIPE).parent / "poetry_mle.toml")
    sizes = ["feature_emb_dim=8" if k == "emb_dim" else f"{k}={v}" for k, v in
             {"emb_dim": 8, "filter_sizes": "[1, 2, 3, 5]", "num_filters": "[4, 4, 4, 4]"}.items()]
    run = tmp_path / "run"
    train(recipe, [
        f"data.dir={poems}", "data.max_train=200", "device=cpu", "runtime.threads=1", "algorithm=leakgan",
        "mle.epochs=0", "eval.bleu_samples=20", "eval.bleu_references=50", "generator.kind=leakgan",
        "generator.emb_dim=8", "generator.hidden_dim=8", "generator.goal_size=4", "generator.step_size=5",
        *[f"generator.{s}" for s in sizes], "discriminator.kind=cnn", "discriminator.emb_dim=8",
        "discriminator.filter_sizes=[1, 2, 3, 5]", "discriminator.num_filters=[4, 4, 4, 4]",
        "leakgan.pretrain_blocks=1", "leakgan.pretrain_d_rounds=1", "leakgan.pretrain_d_epochs=1",
        "leakgan.pretrain_g_epochs=1", "leakgan.iterations=1", "leakgan.d_steps=1", "leakgan.d_epochs=1",
        "leakgan.num_rollouts=2", "leakgan.n_negative=32", "leakgan.g_batch_size=8", "leakgan.eval_every=1",
        "leakgan.cosine_reduction=elementwise",  # the paper's weighting (the synthetic runs take the official)
    ], run_dir=str(run))
    recs = records(run)
    assert [r["phase"] for r in recs] == ["pretrain_g", "pretrain_interleaved", "adversarial"]
    # poetry_mle's start_from = "best" loads nothing when the shared stage has 0 epochs (nothing was trained)
    assert "continuing from the best MLE generator" not in capsys.readouterr().out
    assert all(math.isfinite(r["nll_test"]) for r in recs)
    assert recs[1]["nll_test"] < recs[0]["nll_test"]  # a pretraining epoch on text lowers the held-out NLL
    assert all(math.isfinite(recs[2][k]) for k in ("goal_loss", "worker_loss", "mean_reward"))
