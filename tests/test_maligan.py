"""MaliGAN: the normalised importance weights against their literal computation, the real-prefix completions, a
generator that learns from the weights on a toy task, and (slow) tiny runs: phases, exact resume, refusals."""

import json

import pytest
import torch
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.rl.importance import (
    normalised_weights,
    prefix_completions,
    reference_normalised_weights,
    token_coefficients,
)
from seqgan_kit.rl.policy_gradient import policy_gradient_loss
from seqgan_kit.train import maligan
from seqgan_kit.train.runner import train

from .tiny import RECIPE, TINY, kill_on_call

MALIGAN = TINY + [
    "algorithm=maligan",
    "mle.epochs=2",
    "discriminator.emb_dim=8",
    "discriminator.filter_sizes=[1, 2, 3]",
    "discriminator.num_filters=[4, 4, 4]",
    "maligan.d_pretrain_rounds=2",
    "maligan.iterations=4",
    "maligan.g_steps=2",
    "maligan.d_steps=1",
    "maligan.prefixes=4",
    "maligan.samples_per_prefix=3",
    "maligan.prefix_step=2",
    "maligan.n_negative=32",
    "maligan.d_batch_size=16",
    "maligan.eval_every=1",
    "maligan.checkpoint_every=1",
    "runtime.threads=1",
]


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_normalised_weights_match_the_literal_d_over_one_minus_d(one_thread):
    torch.manual_seed(0)
    disc = CNNDiscriminator(vocab_size=12, seq_len=5, emb_dim=6, filter_sizes=[1, 2], num_filters=[3, 3]).eval()
    seqs = torch.randint(12, (12, 5))
    with torch.no_grad():
        fast = normalised_weights(disc.gan_logits(seqs), n=4)
    slow = reference_normalised_weights(disc.prob_real(seqs), n=4)
    assert torch.allclose(fast.double(), slow, atol=1e-6)
    assert torch.allclose(fast.view(3, 4).sum(1), torch.zeros(3), atol=1e-6)  # the baseline 1/n centres each group
    plain = normalised_weights(disc.gan_logits(seqs).detach(), n=4, baseline=False)
    assert torch.allclose(plain.double(), reference_normalised_weights(disc.prob_real(seqs), 4, False), atol=1e-6)
    # D rounding to 1 in float32 (D / (1 - D) = inf) still gives finite weights from the logits
    extreme = normalised_weights(torch.tensor([200.0, 0.0, -5.0, 1.0]), n=2)
    assert torch.isfinite(extreme).all() and extreme[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="groups of 3"):
        normalised_weights(torch.zeros(4), n=3)


def test_completions_keep_the_real_prefix_and_group_rows_by_prefix(one_thread):
    torch.manual_seed(1)
    gen = LSTMGenerator(vocab_size=20, emb_dim=6, hidden_dim=6, seq_len=7)
    real = torch.randint(20, (3, 7))
    for prefix in (0, 1, 4, 6):
        out = prefix_completions(gen, real, prefix, n=5)
        assert out.shape == (15, 7)
        assert torch.equal(out[:, :prefix], real.repeat_interleave(5, 0)[:, :prefix])
    assert torch.equal(prefix_completions(gen, real, 7, n=2), real.repeat_interleave(2, 0))
    # Greedy completions from the prefix state equal feeding the prefix token by token, then decoding greedily.
    greedy = prefix_completions(gen, real, 3, n=2, temperature=0.0)
    state = gen.initial_state(3)
    for j in range(3):
        state = gen.advance(real[:, j], state)
    rest = gen.generate(state, 4, temperature=0.0)  # [3, 4]
    assert torch.equal(greedy[::2], torch.cat([real[:, :3], rest], 1))
    assert torch.equal(greedy[1::2], greedy[::2])


def test_token_coefficients_weight_the_prefix_by_one_over_mn_and_the_rest_by_the_row_weight():
    w = torch.tensor([0.2, -0.2, 0.1, -0.1, 0.3, -0.3])  # m = 3 groups of n = 2
    coeff = token_coefficients(w, prefix_len=2, seq_len=5)
    assert torch.equal(coeff[:, :2], torch.full((6, 2), 1 / 6))
    assert torch.equal(coeff[:, 2:], w[:, None].expand(6, 3))
    assert torch.equal(token_coefficients(w, 0, 5), w[:, None].expand(6, 5))


@pytest.mark.slow
def test_the_weighted_objective_moves_the_generator_towards_what_d_prefers(one_thread):
    """A toy D whose log-odds grow with the count of token 3: basic MaliGAN steps (N = 0) raise its frequency."""
    torch.manual_seed(2)
    gen = LSTMGenerator(vocab_size=8, emb_dim=8, hidden_dim=16, seq_len=6)
    opt = torch.optim.Adam(gen.parameters(), lr=0.02)
    real = torch.zeros(16, 6, dtype=torch.long)  # only the length matters for N = 0

    def frequency():
        return (gen.sample(2000) == 3).float().mean().item()

    before = frequency()
    for _ in range(60):
        samples = prefix_completions(gen, real, 0, n=8)  # [128, 6]
        weights = normalised_weights(2.0 * (samples == 3).sum(1).float(), n=8)
        loss = policy_gradient_loss(gen.log_probs(samples), token_coefficients(weights, 0, 6))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = frequency()
    assert before < 0.2 and after > before + 0.3, (before, after)


@pytest.fixture(scope="module")
def maligan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("maligan") / "run"
    train(RECIPE, MALIGAN, run_dir=str(run))
    return run


@pytest.mark.slow
def test_maligan_phases_metrics_and_prefix_schedule(maligan_run):
    recs = records(maligan_run)
    assert [(r["phase"], r.get("epoch", r.get("step"))) for r in recs] == [
        ("pretrain_g", 0), ("pretrain_g", 1), ("pretrain_g", 2), ("pretrain_d", 1), ("pretrain_d", 2),
        ("adversarial", 0), ("adversarial", 1), ("adversarial", 2), ("adversarial", 3), ("adversarial", 4)]
    adv = [r for r in recs if r["phase"] == "adversarial"][1:]
    assert [r["prefix_len"] for r in adv] == [4, 2, 0, 0]  # the sequence length 6, less 2 per iteration
    assert all(1.0 <= r["effective_samples"] <= 3.0 and 0 < r["mean_prob_real"] < 1 for r in adv)
    assert all(0 <= r["d_accuracy"] <= 1 for r in adv[1:])
    before = load_file(str(maligan_run / "generator_mle.safetensors"))
    after = load_file(str(maligan_run / "generator.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_maligan_resume_after_a_kill_matches_the_uninterrupted_run(maligan_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, maligan.MaliGANTrainer, "generator_step", 4)  # inside iteration 2
    with pytest.raises(KeyboardInterrupt):
        train(RECIPE, MALIGAN, run_dir=str(killed))
    restore()
    train(None, [], resume=str(killed))
    assert records(killed) == records(maligan_run)
    a = load_file(str(killed / "generator.safetensors"))
    b = load_file(str(maligan_run / "generator.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_maligan_values_are_one_line_errors_before_any_work(tmp_path, capsys):
    args = ["train", RECIPE, "--run-dir", str(tmp_path / "r"), *[a for o in MALIGAN for a in ("--set", o)]]
    for override, message in [
        ("maligan.samples_per_prefix=1", "maligan.samples_per_prefix: must be >= 2"),
        ("maligan.prefix_start=9", "maligan.prefix_start: 9 exceeds the sequence length 6"),
        ("maligan.prefix_start=-2", "maligan.prefix_start: must be -1"),
        ("maligan.prefixes=0", "maligan.prefixes: must be positive"),
        ("discriminator.kind=ranker", "'ranker' lacks gan_logits, prob_real, which algorithm = 'maligan'"),
    ]:
        assert main([*args, "--set", override]) == 2, override
        err = capsys.readouterr().err.strip()
        assert err.startswith("seqgan-kit: error:") and message in err and "\n" not in err, err
    assert main([*args, "--nproc", "2"]) == 2
    assert "algorithm 'maligan' runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


TEXT_TABLES = """[discriminator]
emb_dim = 8
filter_sizes = [1, 2]
num_filters = [4, 4]
[maligan]
d_pretrain_rounds = 1
iterations = 3
g_steps = 2
d_steps = 1
prefixes = 4
prefix_step = 4
n_negative = 32
eval_every = 1
"""


@pytest.mark.slow
def test_maligan_trains_on_variable_length_text(tmp_path):
    from .test_distributed import GENERATOR, TEXT_RECIPE, _toy_corpus

    recipe = tmp_path / "toy.toml"
    recipe.write_text(TEXT_RECIPE.format(algorithm="maligan", dir=_toy_corpus(tmp_path / "corpus"),
                                         segment="sentence", generator=GENERATOR) + TEXT_TABLES)
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    adv = [r for r in records(tmp_path / "run") if r["phase"] == "adversarial"][1:]
    assert [r["prefix_len"] for r in adv] == [9, 5, 1]  # the text's sequence length 13, less 4 per iteration
    assert all(0 < r["mean_prob_real"] < 1 and r["mean_len"] > 1 for r in adv)
