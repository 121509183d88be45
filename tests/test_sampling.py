import pytest
import torch

from seqgan_kit.models.sampling import SAMPLERS, sample_categorical

LOGITS = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0, -3.0]])


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    n = counts.sum()
    return (((counts - n * probs) ** 2) / (n * probs)).sum().item()


@pytest.mark.parametrize("method", sorted(SAMPLERS))
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_every_sampler_draws_softmax_frequencies(method, temperature):
    n = 100_000
    logits = LOGITS.expand(n, -1)
    draws = sample_categorical(logits, temperature, torch.Generator().manual_seed(5), method)
    assert draws.shape == (n,)
    probs = torch.softmax(LOGITS[0].double() / temperature, -1)
    counts = torch.bincount(draws, minlength=6).double()
    assert chi_square(counts, probs) < 20.5  # 5 degrees of freedom, p = 0.001


def test_rows_are_sampled_independently_with_their_own_logits():
    # Row r puts almost all mass on token r: every sampler must respect the row it draws for.
    logits = torch.full((5, 5), -30.0)
    logits.fill_diagonal_(30.0)
    for method in SAMPLERS:
        draws = sample_categorical(logits, 1.0, torch.Generator().manual_seed(0), method)
        assert torch.equal(draws, torch.arange(5)), method


def test_temperature_zero_is_greedy_and_leading_dims_are_kept():
    logits = torch.randn(3, 4, 7)
    assert torch.equal(sample_categorical(logits, 0.0), logits.argmax(-1))
    assert sample_categorical(logits, 1.0).shape == (3, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        sample_categorical(LOGITS, -1.0)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_categorical(LOGITS, 1.0, method="nope")
