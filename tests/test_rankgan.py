"""RankGAN: the ranker's relevance and loss against their literal computation, the batched rank-score rewards
against the slow loop, a ranker and a generator that learn on toy tasks, and (slow) tiny runs: phases, exact
resume, refusals."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.ranker import CNNRanker
from seqgan_kit.models.registry import get_kind
from seqgan_kit.rl.policy_gradient import policy_gradient_loss
from seqgan_kit.rl.rank_reward import rank_rewards, reference_rank_rewards
from seqgan_kit.train import rankgan
from seqgan_kit.train.runner import train

from .tiny import RECIPE, TINY, kill_on_call

RANKGAN = TINY + [
    "algorithm=rankgan",
    "mle.epochs=2",
    "discriminator.kind=ranker",
    "discriminator.emb_dim=8",
    "discriminator.filter_sizes=[1, 2, 3]",
    "discriminator.num_filters=[4, 4, 4]",
    "rankgan.d_pretrain_rounds=3",
    "rankgan.d_pretrain_epochs=2",
    "rankgan.iterations=3",
    "rankgan.d_steps=1",
    "rankgan.num_rollouts=2",
    "rankgan.n_negative=64",
    "rankgan.g_batch_size=8",
    "rankgan.d_batch_size=16",
    "rankgan.ref_size=4",
    "rankgan.eval_every=1",
    "rankgan.checkpoint_every=1",
    "runtime.threads=1",
]


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def tiny_ranker(seed=0, **kwargs):
    torch.manual_seed(seed)
    args = {"vocab_size": 12, "seq_len": 6, "emb_dim": 6, "filter_sizes": [1, 2, 3], "num_filters": [4, 4, 4],
            **kwargs}
    return CNNRanker(**args)


def test_relevance_and_loss_match_the_literal_cosines_and_softmax(one_thread):
    ranker = tiny_ranker(gamma=2.5).eval()
    seqs, refs = torch.randint(12, (5, 6)), torch.randint(12, (3, 6))
    labels = torch.tensor([1, 0, 1, 0, 0])
    with torch.no_grad():
        feats, ref_feats = ranker.features(seqs).double(), ranker.features(refs).double()
        slow = [2.5 * sum(float(f @ r) / (float(f.norm()) * float(r.norm())) for r in ref_feats) for f in feats]
        fast = ranker.relevance(seqs, refs)
        assert fast.tolist() == pytest.approx(slow, rel=1e-5)
        assert ranker.rank_scores(seqs, refs, batch_size=2).tolist() == pytest.approx(slow, rel=1e-5)
        total = sum(math.exp(v) for v in slow)
        log_p = [v - math.log(total) for v in slow]
        want = -((log_p[0] + log_p[2]) / 2 - (log_p[1] + log_p[3] + log_p[4]) / 3)
        assert ranker.loss(seqs, labels, refs).item() == pytest.approx(want, rel=1e-5)
    # one side empty: its mean is left out, not a division by zero
    assert torch.isfinite(CNNRanker.loss_from_scores(torch.randn(4), torch.ones(4, dtype=torch.long)))


def test_the_ranker_rebuilds_from_its_description_and_has_no_output_layer():
    ranker = tiny_ranker(gamma=0.5, pad_token=0)
    assert get_kind("discriminator", "ranker").cls is CNNRanker
    copy = CNNRanker(**ranker.config())  # what a checkpoint's description rebuilds
    copy.load_state_dict(ranker.state_dict())
    assert copy.gamma == 0.5 and copy.pad_token == 0 and not hasattr(copy, "out")
    assert not any("out." in k for k in ranker.state_dict())
    with pytest.raises(ValueError, match="gamma"):
        tiny_ranker(gamma=0.0)


def test_batched_rank_rewards_equal_the_slow_loop(one_thread):
    """Greedy rollouts make both deterministic; at temperature 1 the shapes, ranges and the softmax's sums hold."""
    torch.manual_seed(3)
    gen = LSTMGenerator(vocab_size=12, emb_dim=6, hidden_dim=6, seq_len=6)
    ranker = tiny_ranker(seed=4)
    seqs, refs = gen.sample(5), torch.randint(12, (3, 6))
    fast = rank_rewards(gen, ranker, seqs, refs, 2, temperature=0.0, max_batch=7)
    slow = reference_rank_rewards(gen, ranker, seqs, refs, 2, temperature=0.0)
    assert fast.shape == (5, 6) and torch.allclose(fast.double(), slow, atol=1e-5)
    sampled = rank_rewards(gen, ranker, seqs, refs, 3)
    assert torch.allclose(sampled.sum(0), torch.ones(6), atol=1e-5)  # a softmax over the batch at every position
    assert ranker.training  # the mode is restored


@pytest.fixture(scope="module")
def toy_ranker():
    """A ranker trained 4 epochs on "real" sentences of tokens 0-3 against "generated" ones of tokens 4-11."""
    torch.set_num_threads(1)
    torch.manual_seed(5)
    ranker = tiny_ranker(seed=5, dropout_keep=1.0)
    real = torch.randint(0, 4, (256, 6))
    fake = torch.randint(4, 12, (256, 6))
    opt = torch.optim.Adam(ranker.parameters(), lr=1e-2)
    history = [rankgan.train_ranker(ranker, opt, real, fake, real, epochs=1, batch_size=32, ref_size=4)
               for _ in range(4)]
    return ranker, real, history


@pytest.mark.slow
def test_the_ranker_learns_to_rank_real_above_generated(toy_ranker):
    _, _, history = toy_ranker
    (first_loss, _), (last_loss, last_auc) = history[0], history[-1]
    assert last_loss < first_loss - 0.5 and last_auc > 0.95, history


@pytest.mark.slow
def test_rank_rewards_move_the_generator_towards_the_real_sentences(toy_ranker, one_thread):
    """The trained ranker held fixed: policy-gradient steps on its rank rewards raise the share of "real" tokens."""
    ranker, real, _ = toy_ranker
    torch.manual_seed(6)
    gen = LSTMGenerator(vocab_size=12, emb_dim=8, hidden_dim=16, seq_len=6)
    opt = torch.optim.Adam(gen.parameters(), lr=0.02)

    def real_share():
        return (gen.sample(2000, generator=torch.Generator().manual_seed(0)) < 4).float().mean().item()

    before = real_share()
    for _ in range(20):
        seqs = gen.sample(32)
        rewards = rank_rewards(gen, ranker, seqs, real[:4], 2) * 32  # scaled: an indifferent ranker gives 1
        loss = policy_gradient_loss(gen.log_probs(seqs), rewards, baseline=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = real_share()
    assert after > before + 0.2, (before, after)


@pytest.fixture(scope="module")
def rankgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("rankgan") / "run"
    train(RECIPE, RANKGAN, run_dir=str(run))
    return run


@pytest.mark.slow
def test_rankgan_phases_metrics_and_the_generator_moves(rankgan_run):
    recs = records(rankgan_run)
    assert [(r["phase"], r.get("epoch", r.get("step"))) for r in recs] == [
        ("pretrain_g", 0), ("pretrain_g", 1), ("pretrain_g", 2), ("pretrain_d", 1), ("pretrain_d", 2),
        ("pretrain_d", 3), ("adversarial", 0), ("adversarial", 1), ("adversarial", 2), ("adversarial", 3)]
    # (whether the ranker and the generator learn is checked on the toy tasks above: this tiny oracle is not
    # separable in three rounds of 64 + 64 sequences, as for SeqGAN's discriminator)
    assert all(0 <= r["d_auc"] <= 1 and math.isfinite(r["d_loss"]) for r in recs if "d_auc" in r)
    adv = [r for r in recs if r["phase"] == "adversarial"][1:]
    assert all(r["top_reward_ratio"] >= 1.0 and math.isfinite(r["g_loss_per_token"]) for r in adv)
    before = load_file(str(rankgan_run / "generator_mle.safetensors"))
    after = load_file(str(rankgan_run / "generator.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_rankgan_resume_after_a_kill_matches_the_uninterrupted_run(rankgan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, rankgan.RankGANTrainer, "generator_step", 2)
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, RANKGAN, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(rankgan_run)
    a = load_file(str(killed / "generator.safetensors"))
    b = load_file(str(rankgan_run / "generator.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_rankgan_values_are_one_line_errors_before_any_work(tmp_path, capsys):
    args = ["train", RECIPE, "--run-dir", str(tmp_path / "r"), *[a for o in RANKGAN for a in ("--set", o)]]
    for override, message in [
        ("rankgan.g_batch_size=1", "rankgan.g_batch_size: must be >= 2"),
        ("rankgan.ref_size=0", "rankgan.ref_size: must be positive"),
        ("discriminator.gamma=0", "discriminator.gamma: must be positive"),
        ("discriminator.filter_sizes=[1, 2, 7]", "filter of width 7 exceeds the sequence length 6"),
        ("discriminator.kind=cnn", "'cnn' lacks rank_score, which algorithm = 'rankgan' needs of its discriminator "
                                   "(kinds that have it: 'ranker')"),
    ]:
        assert main([*args, "--set", override]) == 2, override
        err = capsys.readouterr().err.strip()
        assert err.startswith("seqgan-kit: error:") and message in err and "\n" not in err, err
    assert main([*args, "--nproc", "2"]) == 2
    assert "algorithm 'rankgan' runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


TEXT_TABLES = """[discriminator]
kind = "ranker"
emb_dim = 8
filter_sizes = [1, 2]
num_filters = [4, 4]
[rankgan]
d_pretrain_rounds = 1
d_pretrain_epochs = 1
iterations = 2
d_steps = 1
num_rollouts = 2
n_negative = 32
g_batch_size = 8
ref_size = 4
eval_every = 1
"""


@pytest.mark.slow
def test_rankgan_trains_on_variable_length_text(tmp_path):
    from .test_distributed import GENERATOR, TEXT_RECIPE, _toy_corpus

    recipe = tmp_path / "toy.toml"
    recipe.write_text(TEXT_RECIPE.format(algorithm="rankgan", dir=_toy_corpus(tmp_path / "corpus"),
                                         segment="sentence", generator=GENERATOR) + TEXT_TABLES)
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    adv = [r for r in records(tmp_path / "run") if r["phase"] == "adversarial"][1:]
    assert len(adv) == 2 and all(math.isfinite(r["g_loss_per_token"]) and r["mean_len"] > 1 for r in adv)
    final = load_file(str(tmp_path / "run" / "generator.safetensors"))
    mle = load_file(str(tmp_path / "run" / "generator_mle.safetensors"))
    assert any(not torch.equal(final[k], mle[k]) for k in mle)
