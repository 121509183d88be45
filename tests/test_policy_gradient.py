"""The REINFORCE generator loss."""

import pytest
import torch

from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.rl.policy_gradient import policy_gradient_loss

LOG_PROBS = [[-1.0, -2.0], [-0.5, -3.0]]
REWARDS = [[0.5, 1.0], [0.2, 0.0]]


def test_hand_computed_sum_over_batch_and_time():
    # -( -1*0.5 + -2*1.0 + -0.5*0.2 + -3*0.0 ) = 0.5 + 2.0 + 0.1 = 2.6
    loss = policy_gradient_loss(torch.tensor(LOG_PROBS), torch.tensor(REWARDS))
    torch.testing.assert_close(loss, torch.tensor(2.6))


def test_gradient_flows_through_log_probs_only():
    lp = torch.tensor(LOG_PROBS, requires_grad=True)
    rw = torch.tensor(REWARDS, requires_grad=True)
    policy_gradient_loss(lp, rw).backward()
    torch.testing.assert_close(lp.grad, -torch.tensor(REWARDS))
    assert rw.grad is None


def test_mask_excludes_padding():
    rewards = torch.tensor([[0.5, 1.0], [0.2, 5.0]])
    mask = torch.tensor([[True, True], [True, False]])
    # -( -0.5 + -2.0 + -0.1 ) = 2.6; the masked (-3 * 5) term is dropped
    loss = policy_gradient_loss(torch.tensor(LOG_PROBS), rewards, mask=mask)
    torch.testing.assert_close(loss, torch.tensor(2.6))
    lp = torch.tensor(LOG_PROBS, requires_grad=True)
    policy_gradient_loss(lp, rewards, mask=mask.long()).backward()
    assert lp.grad[1, 1] == 0


def test_baseline_subtracts_the_per_position_batch_mean():
    # position means: 0.35, 0.5 -> advantages [[0.15, 0.5], [-0.15, -0.5]]
    # loss = -( -1*0.15 + -2*0.5 + -0.5*-0.15 + -3*-0.5 ) = -( -0.15 - 1.0 + 0.075 + 1.5 ) = -0.425
    loss = policy_gradient_loss(torch.tensor(LOG_PROBS), torch.tensor(REWARDS), baseline=True)
    torch.testing.assert_close(loss, torch.tensor(-0.425))


def test_baseline_with_mask_uses_the_unmasked_mean():
    rewards = torch.tensor([[0.5, 1.0], [0.2, 5.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # position 0: mean 0.35 -> [0.15, -0.15]
    # position 1: mean over the one unmasked row = 1.0 -> [0.0, (masked)]
    # loss = -( -1*0.15 + -2*0.0 + -0.5*-0.15 ) = -( -0.15 + 0.075 ) = 0.075
    loss = policy_gradient_loss(torch.tensor(LOG_PROBS), rewards, mask=mask, baseline=True)
    torch.testing.assert_close(loss, torch.tensor(0.075))


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        policy_gradient_loss(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="mask"):
        policy_gradient_loss(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(3, 2))


def test_generator_gradient_raises_the_probability_of_rewarded_sequences():
    torch.manual_seed(0)
    gen = LSTMGenerator(6, 8, 8, 4)
    seqs = gen.sample(8)
    rewards = torch.zeros(8, 4)
    rewards[0] = 1.0  # only the first sequence is rewarded
    opt = torch.optim.SGD(gen.parameters(), lr=0.1)
    before = gen.log_probs(seqs).sum(1).detach()
    opt.zero_grad()
    policy_gradient_loss(gen.log_probs(seqs), rewards).backward()
    assert all(p.grad is not None for p in gen.parameters())
    opt.step()
    after = gen.log_probs(seqs).sum(1).detach()
    assert after[0] > before[0]
