"""Variable-length text: EOS ends a sequence, PAD follows, and padding is masked out of every computation."""

import pytest
import torch

from seqgan_kit.metrics.nll import sequence_nll
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.rl.policy_gradient import policy_gradient_loss
from seqgan_kit.rl.rollout import reference_rollout_rewards, rollout_completions, rollout_rewards
from seqgan_kit.train.mle import mle_loss

PAD, BOS, EOS = 0, 1, 2
V, T = 12, 7


pytestmark = pytest.mark.usefixtures("one_thread")


def text_generator(seed: int = 0, std: float = 0.5) -> LSTMGenerator:
    torch.manual_seed(seed)
    return LSTMGenerator(V, 8, 8, T, start_token=BOS, init_std=std, eos_token=EOS, pad_token=PAD)


def padded(rows: list[list[int]], width: int = T) -> torch.Tensor:
    """Token lists (each ending with EOS) -> ``[B, width]`` padded with PAD."""
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


ROWS = [[5, 6, EOS], [3, 4, 5, 6, 7, 8, EOS], [EOS], [9, 9, 9, 9, 9, 9, 9]]  # the last one has no EOS (cut)


def unpadded_token_logps(gen: LSTMGenerator, rows: list[list[int]]) -> list[float]:
    """Every token's log-probability, one sequence at a time, each run on exactly its own tokens."""
    out = []
    for row in rows:
        seq = torch.tensor([row])  # [1, L]
        logp = torch.log_softmax(gen(seq), dim=-1)[0]  # [L, V]
        out += [logp[i, tok].item() for i, tok in enumerate(row)]
    return out


def test_padded_batch_has_the_loss_of_the_unpadded_sequences():
    gen = text_generator()
    logps = unpadded_token_logps(gen, ROWS)
    expected = -sum(logps) / len(logps)
    batch = padded(ROWS)
    assert mle_loss(gen, batch).item() == pytest.approx(expected, rel=1e-6)
    assert gen.nll(batch).item() == pytest.approx(expected, rel=1e-6)
    assert sequence_nll(gen, batch, batch_size=3) == pytest.approx(expected, rel=1e-6)
    # More padding changes nothing.
    wider = LSTMGenerator(V, 8, 8, T + 5, start_token=BOS, eos_token=EOS, pad_token=PAD)
    wider.load_state_dict(gen.state_dict())
    assert sequence_nll(wider, padded(ROWS, T + 5)) == pytest.approx(expected, rel=1e-6)


def test_log_probs_are_zero_on_padding_and_finite_elsewhere():
    gen = text_generator()
    lp = gen.log_probs(padded(ROWS))
    mask = gen.token_mask(padded(ROWS))
    assert mask.sum(dim=1).tolist() == [3, 7, 1, 7]
    assert torch.all(lp[~mask] == 0)
    assert torch.all(torch.isfinite(lp)) and torch.all(lp[mask] < 0)


def test_samples_end_at_eos_and_never_contain_pad_or_bos_before_it():
    gen = text_generator(std=1.0)
    with torch.no_grad():  # make EOS likely so both ended and cut rows occur
        gen.proj.bias[EOS] += 1.5
    seqs = gen.sample(500, generator=torch.Generator().manual_seed(0))
    ended = (seqs == EOS).long().cummax(dim=1).values.bool()  # [N, T]: at or after the first EOS
    after = ended & (seqs != EOS) | (ended.cumsum(1) > 1)
    assert torch.all(seqs[after] == PAD)  # everything after the first EOS is PAD
    before = ~ended
    assert not torch.any((seqs[before] == PAD) | (seqs[before] == BOS))
    assert ended[:, -1].all()  # every sample ends: the last position is always EOS
    first_eos = (seqs == EOS).int().argmax(dim=1)  # [N]
    last = seqs.shape[1] - 1
    assert (first_eos < last).any() and (first_eos == last).any()  # some chose EOS, some reached the limit
    assert torch.equal(gen.token_mask(seqs), seqs != PAD)


def test_discriminator_score_does_not_depend_on_padding_width():
    torch.manual_seed(0)
    small = CNNDiscriminator(V, T, emb_dim=6, filter_sizes=[1, 2, 4], num_filters=[5, 4, 3], pad_token=PAD)
    large = CNNDiscriminator(V, T + 6, emb_dim=6, filter_sizes=[1, 2, 4], num_filters=[5, 4, 3], pad_token=PAD)
    large.load_state_dict(small.state_dict())
    assert torch.all(small.embedding.weight[PAD] == 0)
    p_small = small.prob_real(padded(ROWS, T))
    p_large = large.prob_real(padded(ROWS, T + 6))
    torch.testing.assert_close(p_small, p_large, rtol=0, atol=1e-6)
    # Without the mask, windows of padding would change the score: the test can tell the two apart.
    unmasked = CNNDiscriminator(V, T + 6, emb_dim=6, filter_sizes=[1, 2, 4], num_filters=[5, 4, 3])
    unmasked.load_state_dict(small.state_dict())
    assert not torch.allclose(unmasked.prob_real(padded(ROWS, T + 6)), p_small, atol=1e-4)


def test_discriminator_mask_matches_a_per_row_reference():
    """Reference: each sequence alone, its L embeddings zero-padded to the filter width; max over its windows
    (starts 0 .. max(0, L - k))."""
    torch.manual_seed(1)
    d = CNNDiscriminator(V, T, emb_dim=4, filter_sizes=[1, 3, 5], num_filters=[3, 2, 2], pad_token=PAD).eval()
    seqs = padded(ROWS)
    with torch.no_grad():
        got = d.features(seqs)
        for b, row in enumerate(ROWS):
            emb = d.embedding(torch.tensor(row))  # [L, E]
            pooled = []
            for k, conv in zip(d.filter_sizes, d.convs, strict=True):
                full = torch.cat([emb, torch.zeros(T, emb.shape[1])])  # zero padding
                windows = [full[p:p + k].reshape(-1) for p in range(max(1, len(row) - k + 1))]
                pooled.append(torch.stack([conv(w) for w in windows]).amax(dim=0))
            x = torch.cat(pooled).relu()
            hw = d.highway(x)
            gate = torch.sigmoid(hw[x.numel():])
            expected = gate * hw[: x.numel()].relu() + (1 - gate) * x
            torch.testing.assert_close(got[b], expected, rtol=1e-5, atol=1e-6)


def test_rollout_respects_eos_and_matches_the_reference_greedily():
    gen = text_generator(seed=3, std=1.0)
    with torch.no_grad():
        gen.proj.bias[EOS] += 1.0
    seqs = padded(ROWS)
    comp = rollout_completions(gen, seqs, 3, rng=torch.Generator().manual_seed(0))  # [T-1, N, B, T]
    for t in range(1, T):
        block = comp[t - 1]  # [N, B, T]
        assert torch.equal(block[:, :, :t], seqs[:, :t].expand(3, -1, -1))
        for b, row in enumerate(ROWS):
            if EOS in row[:t]:  # the prefix has ended: the completion is the sequence itself
                assert torch.equal(block[:, b], seqs[b].expand(3, -1))
    flat = comp.reshape(-1, T)
    ended = (flat == EOS).long().cummax(dim=1).values.bool()
    assert torch.all(flat[ended & (flat != EOS)] == PAD)

    def reward(s: torch.Tensor) -> torch.Tensor:
        return (s == 5).double().sum(dim=1) + 0.1 * (s != PAD).double().sum(dim=1)

    fast = rollout_rewards(gen, reward, seqs, 2, temperature=0.0)
    slow = reference_rollout_rewards(gen, reward, seqs, 2, temperature=0.0)
    torch.testing.assert_close(fast, slow)


def test_policy_gradient_ignores_positions_after_eos():
    gen = text_generator()
    seqs = padded(ROWS)
    rewards = torch.rand(seqs.shape, dtype=torch.float64)
    loss = policy_gradient_loss(gen.log_probs(seqs), rewards, mask=gen.token_mask(seqs))
    junk = rewards.clone()
    junk[~gen.token_mask(seqs)] = 1e6  # rewards of padding positions must not matter
    loss2 = policy_gradient_loss(gen.log_probs(seqs), junk, mask=gen.token_mask(seqs))
    assert loss.item() == pytest.approx(loss2.item())
    expected = -sum(lp * r for lp, r, m in zip(gen.log_probs(seqs).flatten().tolist(), rewards.flatten().tolist(),
                                              gen.token_mask(seqs).flatten().tolist(), strict=True) if m)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_sampled_rollouts_agree_with_the_reference_in_distribution():
    """Both implementations estimate E[reward | prefix]; with 600 rollouts each their means must agree within
    the Monte Carlo error (reward in [0, 1], so the standard error is at most 0.5 / sqrt(600) each)."""
    gen = text_generator(seed=5, std=1.0)
    with torch.no_grad():
        gen.proj.bias[EOS] += 1.0  # many continuations end early
    seqs = gen.sample(4, generator=torch.Generator().manual_seed(1))

    def reward(s: torch.Tensor) -> torch.Tensor:
        return ((s == 5).double().sum(dim=1) + (s != PAD).double().sum(dim=1)) / (2 * T)

    fast = rollout_rewards(gen, reward, seqs, 600, rng=torch.Generator().manual_seed(2))
    slow = reference_rollout_rewards(gen, reward, seqs, 600, rng=torch.Generator().manual_seed(3))
    assert torch.equal(fast[:, -1], reward(seqs))
    assert (fast - slow).abs().max().item() < 5 * 0.5 * (2 / 600) ** 0.5
    assert (fast[:, :-1] - fast[:, -1:]).abs().max().item() > 0.02  # the rollouts really vary the completions
