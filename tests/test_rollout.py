"""Monte Carlo rollout rewards: batched scheme vs the reference algorithm and vs exact expectations."""

import itertools

import pytest
import torch

from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.rl.rollout import (
    RolloutPolicy,
    reference_rollout_rewards,
    rollout_completions,
    rollout_rewards,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def make_generator(vocab: int, length: int, seed: int = 0, std: float = 0.1, dim: int = 8) -> LSTMGenerator:
    torch.manual_seed(seed)
    return LSTMGenerator(vocab, dim, dim, length, start_token=0, init_std=std)


def encode(vocab: int):
    """An injective reward: the sequence read as a base-``vocab`` number (float64, exact at these sizes)."""

    def fn(seqs: torch.Tensor) -> torch.Tensor:
        weights = vocab ** torch.arange(seqs.shape[1], dtype=torch.float64)  # [T]
        return (seqs.double() * weights).sum(dim=1)  # [M]

    return fn


def weighted_ones(seqs: torch.Tensor) -> torch.Tensor:
    """Reward in [0, 1]: position-weighted fraction of tokens equal to 1."""
    w = torch.arange(1, seqs.shape[1] + 1, dtype=torch.float64)  # [T]
    return ((seqs == 1).double() * w).sum(dim=1) / w.sum()  # [M]


def exact_moments(gen: LSTMGenerator, seqs: torch.Tensor, reward, temperature: float):
    """E[reward | prefix] and Var[reward | prefix] by enumerating every continuation (tiny V and T only).

    Returns two ``[B, T-1]`` float64 tensors (column t-1 = prefix length t).
    """
    vocab, t_len = gen.vocab_size, seqs.shape[1]
    every = torch.tensor(list(itertools.product(range(vocab), repeat=t_len)))  # [V^T, T]
    with torch.no_grad():
        logits = gen(every).double() / temperature  # [V^T, T, V]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, every.unsqueeze(-1)).squeeze(-1)  # [V^T, T]
    f = reward(every).double()  # [V^T]
    means, variances = [], []
    for t in range(1, t_len):
        match = (every[None, :, :t] == seqs[:, None, :t]).all(-1).double()  # [B, V^T]
        p_cont = logp[:, t:].sum(dim=1).exp()  # [V^T]  P(continuation | prefix)
        w = match * p_cont  # [B, V^T]
        assert torch.allclose(w.sum(1), torch.ones(len(seqs), dtype=torch.float64))
        m1 = (w * f).sum(1)  # [B]
        m2 = (w * f * f).sum(1)  # [B]
        means.append(m1)
        variances.append((m2 - m1 * m1).clamp(min=0))
    return torch.stack(means, dim=1), torch.stack(variances, dim=1)


# --------------------------------------------------------------------------- shapes and layout
def test_shapes_prefixes_and_last_position():
    gen = make_generator(9, 6)
    seqs = gen.sample(5)
    comp = rollout_completions(gen, seqs, 3, rng=torch.Generator().manual_seed(1))
    assert comp.shape == (5, 3, 5, 6)  # [T-1, N, B, T]
    for t in range(1, 6):
        assert torch.equal(comp[t - 1, :, :, :t], seqs[:, :t].expand(3, 5, t))
    rewards = rollout_rewards(gen, weighted_ones, seqs, 3, rng=torch.Generator().manual_seed(1))
    assert rewards.shape == (5, 6)
    assert torch.equal(rewards[:, -1], weighted_ones(seqs))
    # column t-1 is the mean over rollouts of the reward of the completions sampled with the same seed
    flat = weighted_ones(comp.reshape(-1, 6))  # [L, N, B, T] -> [L*N*B, T] -> [L*N*B]
    expected = flat.view(5, 3, 5).mean(dim=1).T  # [L, N, B] -> [L, B] -> [B, L]
    assert torch.equal(rewards[:, :-1], expected)


def test_length_one_sequences_only_score_the_sequence():
    gen = make_generator(5, 1)
    seqs = torch.tensor([[1], [3], [4]])
    assert torch.equal(rollout_rewards(gen, encode(5), seqs, 2), encode(5)(seqs)[:, None])
    assert torch.equal(reference_rollout_rewards(gen, encode(5), seqs, 2), encode(5)(seqs)[:, None])


@pytest.mark.parametrize("num", [0, -2])
def test_nonpositive_rollout_num_is_a_user_error(num):
    gen = make_generator(5, 4)
    seqs = gen.sample(2)
    with pytest.raises(ValueError, match="num_rollouts must be >= 1"):
        rollout_rewards(gen, weighted_ones, seqs, num)
    with pytest.raises(ValueError, match="num_rollouts must be >= 1"):
        reference_rollout_rewards(gen, weighted_ones, seqs, num)


def test_bad_max_batch_and_bad_reward_fn():
    gen = make_generator(5, 4)
    seqs = gen.sample(2)
    with pytest.raises(ValueError, match="max_batch"):
        rollout_rewards(gen, weighted_ones, seqs, 2, max_batch=0)
    with pytest.raises(ValueError, match=r"reward_fn must map \[M, T\] to \[M\]"):
        rollout_rewards(gen, lambda s: s.double(), seqs, 2)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        rollout_rewards(gen, weighted_ones, seqs[0], 2)


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("max_batch", [1, 7, 65536])
def test_greedy_batched_equals_reference_exactly(max_batch):
    gen = make_generator(11, 7, std=0.5)
    seqs = gen.sample(6, generator=torch.Generator().manual_seed(3))
    reward = encode(11)  # injective: equal rewards <=> equal completions
    batched = rollout_rewards(gen, reward, seqs, 2, temperature=0.0, max_batch=max_batch)
    reference = reference_rollout_rewards(gen, reward, seqs, 2, temperature=0.0)
    assert torch.equal(batched, reference)


def test_greedy_with_discriminator_reward_matches_reference():
    gen = make_generator(13, 6, std=0.5)
    disc = CNNDiscriminator(13, 6, emb_dim=8, filter_sizes=[1, 2, 4], num_filters=[5, 6, 7]).train()
    seqs = gen.sample(4)
    batched = rollout_rewards(gen, disc.prob_real, seqs, 2, temperature=0.0)
    reference = reference_rollout_rewards(gen, disc.prob_real, seqs, 2, temperature=0.0)
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-6)
    assert ((batched >= 0) & (batched <= 1)).all()
    assert disc.training  # prob_real restored the mode


@pytest.mark.parametrize("batch,num,length", [(5, 3, 7), (4, 4, 5), (3, 6, 4), (6, 2, 7)])
def test_layout_cannot_scramble_sequences_rollouts_or_positions(batch, num, length):
    """The TextGAN-PyTorch bug: flat rewards reshaped in the wrong axis order. Here the rollout policy is
    deterministic *while going through the random sampler* (all mass on token 0) and the reward identifies
    the completion, so every (b, t) entry has a unique known value. Sizes include B == N and B == T - 1 so a
    wrong reshape of equal-sized axes cannot hide. (A policy that ignores its state cannot see a misaligned
    *start state*; the greedy-equality and enumeration tests cover that.)"""
    vocab = 11
    gen = make_generator(vocab, length)
    with torch.no_grad():
        gen.proj.weight.zero_()
        gen.proj.bias.fill_(-60.0)
        gen.proj.bias[0] = 60.0  # P(token 0) = 1 to float precision
    seqs = torch.randint(1, vocab, (batch, length))  # tokens 1..V-1: never the policy's token 0
    seqs[:, 0] = torch.arange(1, batch + 1)  # distinct first tokens: every prefix identifies its row
    reward = encode(vocab)
    positions = torch.arange(length)  # [T]
    expected = torch.empty(batch, length, dtype=torch.float64)
    for t in range(1, length):
        completed = torch.where(positions < t, seqs, 0)  # [B, T] prefix then zeros
        expected[:, t - 1] = reward(completed)
    expected[:, -1] = reward(seqs)
    for max_batch in (65536, 5):
        got = rollout_rewards(gen, reward, seqs, num, temperature=1.0, max_batch=max_batch,
                              rng=torch.Generator().manual_seed(0))
        assert torch.equal(got, expected)
    assert torch.equal(reference_rollout_rewards(gen, reward, seqs, num), expected)


def test_each_needed_token_is_sampled_exactly_once(monkeypatch):
    gen = make_generator(7, 6)
    seqs = gen.sample(4)
    rows = []

    def counting(name):  # the logits of a draw come from ``logits`` or (inverse_cdf) ``logits_and_bias``
        original = getattr(LSTMGenerator, name)

        def wrapped(self, state):
            rows.append(state[0].shape[0])
            return original(self, state)

        monkeypatch.setattr(LSTMGenerator, name, wrapped)

    counting("logits")
    counting("logits_and_bias")
    rollout_completions(gen, seqs, 3, max_batch=10)
    n, b, t = 3, 4, 6
    assert sum(rows) == n * b * t * (t - 1) // 2  # sum over prefix lengths of the T - t sampled tokens
    assert max(rows) <= 10


def test_chunking_does_not_change_seeded_samples():
    gen = make_generator(9, 6)
    seqs = gen.sample(5)
    out = [
        rollout_rewards(gen, encode(9), seqs, 3, max_batch=mb, rng=torch.Generator().manual_seed(42))
        for mb in (1, 4, 13, 65536)
    ]
    for other in out[1:]:
        assert torch.equal(out[0], other)
    scored = []

    def recording(s: torch.Tensor) -> torch.Tensor:
        scored.append(s.shape[0])
        return encode(9)(s)

    rollout_rewards(gen, recording, seqs, 3, max_batch=13)
    assert max(scored) <= 13 and sum(scored) == 5 * 3 * 5 + 5


def test_thread_count_does_not_change_seeded_samples():
    """The CPU sampler splits a block's rows over threads; each row still gets its own uniform in row order."""
    gen = make_generator(9, 6)
    seqs = gen.sample(40)
    before = torch.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out.append(rollout_rewards(gen, encode(9), seqs, 4, rng=torch.Generator().manual_seed(3)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0], out[1])


def test_seeded_runs_repeat_and_differ_across_seeds():
    gen = make_generator(9, 6)
    seqs = gen.sample(5)

    def run(seed):
        return rollout_rewards(gen, encode(9), seqs, 3, rng=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


# --------------------------------------------------------------------------- distribution
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_batched_matches_exact_expectation_by_enumeration(temperature):
    """V = 3, T = 4: E[reward | prefix] over all 3^(T-t) continuations under the generator's own
    probabilities. Each entry is a mean of N i.i.d. rewards, so (estimate - E) / sqrt(Var / N) is ~N(0, 1)."""
    gen = make_generator(3, 4, std=1.0)
    seqs = torch.tensor(list(itertools.product(range(3), repeat=4)))[::7]  # [12, 4] distinct sequences
    n = 4000
    rewards = rollout_rewards(gen, weighted_ones, seqs, n, temperature=temperature,
                              rng=torch.Generator().manual_seed(5))
    mean, var = exact_moments(gen, seqs, weighted_ones, temperature)
    est = rewards[:, :-1].double()
    z = (est - mean) / (var / n).sqrt().clamp(min=1e-12)
    assert z.abs().max() < 5.0, z
    torch.testing.assert_close(rewards[:, -1].double(), weighted_ones(seqs))


@pytest.mark.slow
def test_batched_and_reference_agree_in_distribution():
    """Batched vs reference rewards, both with N rollouts: their difference has variance 2 Var / N (exact
    Var by enumeration on V = 4, T = 5); also each against the exact mean."""
    gen = make_generator(4, 5, std=1.0, seed=2)
    seqs = gen.sample(6, generator=torch.Generator().manual_seed(9))
    n = 800
    batched = rollout_rewards(gen, weighted_ones, seqs, n, rng=torch.Generator().manual_seed(1))
    reference = reference_rollout_rewards(gen, weighted_ones, seqs, n, rng=torch.Generator().manual_seed(2))
    mean, var = exact_moments(gen, seqs, weighted_ones, 1.0)
    sd = (var / n).sqrt().clamp(min=1e-12)
    assert ((batched[:, :-1] - reference[:, :-1]) / (sd * 2**0.5)).abs().max() < 5.0
    assert ((batched[:, :-1] - mean) / sd).abs().max() < 5.0
    assert ((reference[:, :-1] - mean) / sd).abs().max() < 5.0
    assert torch.equal(batched[:, -1], reference[:, -1])


# --------------------------------------------------------------------------- rollout policy
def test_rollout_policy_default_is_the_live_generator():
    gen = make_generator(5, 4)
    policy = RolloutPolicy(gen)
    assert policy.module is gen
    policy.update()  # no-op
    assert policy.state_dict() == {"decay": 0.0, "ema": None}


def test_rollout_policy_ema_update():
    gen = make_generator(5, 4)
    policy = RolloutPolicy(gen, decay=0.75)
    assert policy.module is not gen
    before = {k: v.clone() for k, v in policy.module.state_dict().items()}
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(1.0)
    policy.update()
    for name, p in gen.named_parameters():
        torch.testing.assert_close(policy.module.state_dict()[name], 0.75 * before[name] + 0.25 * p.detach())
    assert not any(p.requires_grad for p in policy.module.parameters())
    other = RolloutPolicy(gen, decay=0.75)
    other.load_state_dict(policy.state_dict())
    for a, b in zip(other.module.parameters(), policy.module.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="decay"):
        RolloutPolicy(gen, decay=0.5).load_state_dict(policy.state_dict())


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_rollout_policy_rejects_bad_decay(decay):
    with pytest.raises(ValueError, match="EMA decay"):
        RolloutPolicy(make_generator(5, 4), decay=decay)
