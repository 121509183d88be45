import math

import torch

from seqgan_kit.metrics.nll import nll_oracle, nll_test, sequence_nll
from seqgan_kit.models.lstm_generator import LSTMGenerator


def fixed_distribution_model(probs: list[float], length: int) -> LSTMGenerator:
    """A model whose next-token distribution is ``probs`` at every step (all weights zero, bias = log p)."""
    g = LSTMGenerator(len(probs), 2, 3, length)
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        g.proj.bias.copy_(torch.log(torch.tensor(probs)))
    return g


def test_nll_of_a_hand_computed_case():
    g = fixed_distribution_model([0.5, 0.25, 0.25], 3)
    seqs = torch.tensor([[0, 1, 2], [0, 0, 0]])
    # tokens: -log(.5) -log(.25) -log(.25) and three times -log(.5): (3 ln2 + 2 ln4) / 6 ... written out:
    expected = (3 * math.log(2) + math.log(2) + 2 * math.log(4)) / 6
    assert math.isclose(sequence_nll(g, seqs), expected, rel_tol=1e-6)
    assert math.isclose(sequence_nll(g, seqs, batch_size=1), expected, rel_tol=1e-6)
    assert math.isclose(nll_test(g, seqs), expected, rel_tol=1e-6)


def test_uniform_generator_scores_log_vocab():
    g = fixed_distribution_model([0.2] * 5, 4)
    seqs = torch.randint(0, 5, (10, 4))
    assert math.isclose(sequence_nll(g, seqs), math.log(5), rel_tol=1e-6)


def test_nll_oracle_samples_the_generator_and_scores_with_the_oracle():
    # LSTMGenerator always emits token 1; the oracle gives token 1 probability 0.1 -> NLL_oracle = -log 0.1.
    gen = fixed_distribution_model([1e-9, 1 - 2e-9, 1e-9], 4)
    oracle = fixed_distribution_model([0.45, 0.1, 0.45], 4)
    assert math.isclose(nll_oracle(gen, oracle, n_samples=50, batch_size=7), -math.log(0.1), rel_tol=1e-5)
