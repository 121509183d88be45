import math

import pytest
import torch

from seqgan_kit.models.lstm_generator import LSTMGenerator


def tiny(seed: int = 0, vocab: int = 11, length: int = 6) -> LSTMGenerator:
    torch.manual_seed(seed)
    return LSTMGenerator(vocab, emb_dim=5, hidden_dim=7, seq_len=length, start_token=0, init_std=0.5)


def test_forward_and_log_prob_shapes():
    g = tiny()
    x = torch.randint(0, 11, (4, 6))
    assert g(x).shape == (4, 6, 11)
    assert g.log_probs(x).shape == (4, 6)
    assert g.sample(9).shape == (9, 6)
    assert g.sample(9).dtype == torch.int64


def test_paper_init_is_normal_0_1_and_one_gate_bias():
    torch.manual_seed(0)
    g = LSTMGenerator(5000, 32, 32, 20)
    w = g.embedding.weight
    assert abs(w.mean().item()) < 0.003 and abs(w.std().item() - 0.1) < 0.002
    assert torch.count_nonzero(g.lstm.bias_hh_l0) == 0
    assert abs(g.proj.weight.std().item() - 0.1) < 0.002


def test_incremental_step_matches_teacher_forcing():
    g = tiny()
    x = torch.randint(0, 11, (3, 6))
    logits = g(x)
    state = g.initial_state(3)
    for t in range(6):
        assert torch.allclose(g.logits(state), logits[:, t], atol=1e-6)
        state = g.advance(x[:, t], state)


def test_prefix_states_give_the_teacher_forced_logits():
    g = tiny()
    x = torch.randint(0, 11, (3, 6))
    h, c = g.prefix_states(x)
    assert h.shape == c.shape == (3, 6, 7)
    assert torch.allclose(g.proj(h), g(x), atol=1e-6)


def test_log_probs_against_a_slow_loop():
    g = tiny()
    x = torch.randint(0, 11, (2, 6))
    lp = g.log_probs(x)
    for b in range(2):  # reference: one sequence, one step at a time, explicit softmax
        state = g.initial_state(1)
        for t in range(6):
            p = torch.softmax(g.logits(state)[0], -1)
            assert math.isclose(lp[b, t].item(), math.log(p[x[b, t]].item()), abs_tol=1e-5)
            state = g.advance(x[b, t : t + 1], state)


def test_sampling_matches_the_model_distribution():
    # Length-2 sequences over 4 tokens: compare empirical joint frequencies with exp(sum log_probs).
    torch.manual_seed(3)
    g = LSTMGenerator(4, 3, 5, seq_len=2, init_std=1.0)
    samples = g.sample(200_000, generator=torch.Generator().manual_seed(1))
    all_pairs = torch.cartesian_prod(torch.arange(4), torch.arange(4))  # [16, 2]
    expected = g.log_probs(all_pairs).sum(-1).exp().detach()  # [16]
    assert torch.isclose(expected.sum(), torch.tensor(1.0), atol=1e-5)
    counts = torch.bincount(samples[:, 0] * 4 + samples[:, 1], minlength=16).double()
    chi2 = ((counts - 200_000 * expected) ** 2 / (200_000 * expected)).sum().item()
    assert chi2 < 37.7  # 15 degrees of freedom, p = 0.001


def test_greedy_sampling_is_argmax_and_deterministic():
    g = tiny()
    a = g.sample(5, temperature=0)
    b = g.sample(5, temperature=0)
    assert torch.equal(a, b)
    state = g.initial_state(1)
    for t in range(6):
        tok = g.logits(state).argmax(-1)
        assert tok.item() == a[0, t].item()
        state = g.advance(tok, state)


def test_seeded_sampling_is_reproducible_and_chunk_independent_in_shape():
    g = tiny()
    a = g.sample(10, generator=torch.Generator().manual_seed(7))
    b = g.sample(10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert g.sample(10, batch_size=3).shape == (10, 6)


def test_bad_shapes_are_rejected():
    g = tiny()
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        g(torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        g(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="start_token"):
        LSTMGenerator(5, start_token=5)
