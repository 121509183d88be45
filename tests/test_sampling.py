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


# --------------------------------------------------------------------------- inverse_cdf: one exp pass (numba on CPU)
def reference_inverse_cdf(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0):
    """Slow, obviously correct: float64 softmax, cumulative sum, the first index whose CDF exceeds ``u``.
    Also returns each draw's distance from the nearest interval end (to skip draws that rounding may move)."""
    tokens, margins = [], []
    for row, ur in zip(logits.double(), u.double(), strict=True):
        probs = torch.softmax(row / temperature, dim=0)
        cdf = torch.cumsum(probs, dim=0)
        j = int((cdf <= ur).sum())
        tokens.append(min(j, row.numel() - 1))
        margins.append(float((cdf - ur).abs().min()))
    return torch.tensor(tokens), torch.tensor(margins)


def test_exp_kernel_matches_float64_exp():
    import numba
    import numpy as np

    from seqgan_kit.models._sampling_kernels import exp32

    @numba.njit
    def apply(y, out):
        for i in range(y.shape[0]):
            out[i] = exp32(y[i])

    y = torch.cat([torch.linspace(-87.0, 88.0, 200_001), torch.tensor([-86.99, -1e-7, 0.0, 1e-7])])
    out = np.empty(y.numel(), np.float32)
    apply(y.numpy(), out)
    ref = torch.exp(y.double())
    rel = ((torch.from_numpy(out).double() - ref) / ref).abs()
    assert rel.max() < 3e-7, rel.max()
    low = torch.tensor([-87.01, -100.0, -1e30, float("-inf")])
    out = np.empty(4, np.float32)
    apply(low.numpy(), out)
    assert (out == 0).all()  # below exp(-87) (and -inf): exactly 0, so such a token is never drawn


@pytest.mark.parametrize("temperature", [1.0, 0.7, 3.0])
@pytest.mark.parametrize("vocab", [1, 7, 256, 300, 3000])
def test_inverse_cdf_is_the_inverse_cdf_of_the_softmax(vocab, temperature):
    """Same uniforms (one float32 per row, in row order, from the generator) -> the same tokens as the slow
    float64 reference, except where a uniform lies within float32 rounding of an interval end."""
    g = torch.Generator().manual_seed(vocab)
    logits = torch.randn(400, vocab, generator=g) * 3
    logits[::3, ::5] = float("-inf")  # banned entries (row 0 keeps entry 1 when V > 1; V = 1 rows stay finite)
    if vocab == 1:
        logits[:] = 0.5
    draws = sample_categorical(logits, temperature, torch.Generator().manual_seed(11))
    u = torch.rand(400, generator=torch.Generator().manual_seed(11))
    expected, margin = reference_inverse_cdf(logits, u, temperature)
    clear = margin > 1e-5
    assert clear.float().mean() > 0.9
    assert torch.equal(draws[clear], expected[clear])
    assert torch.isfinite(logits.gather(1, draws[:, None])).all()  # never a banned token


def test_inverse_cdf_rows_far_from_zero_take_the_shifted_pass():
    """Logits above ~70 would overflow exp and logits all below ~-50 would lose precision without subtracting
    the row maximum; such rows are redone with the maximum subtracted and give the same draws."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(300, 500, generator=g)
    u = torch.rand(300, generator=torch.Generator().manual_seed(4))
    expected, margin = reference_inverse_cdf(base, u)
    clear = margin > 1e-5
    for offset in (0.0, 1000.0, -1000.0, 3e4, -3e4):
        draws = sample_categorical(base + offset, 1.0, torch.Generator().manual_seed(4))
        assert torch.equal(draws[clear], expected[clear]), offset


def test_inverse_cdf_bias_is_added_before_sampling():
    g = torch.Generator().manual_seed(0)
    x, b = torch.randn(50, 700, generator=g), torch.randn(700, generator=g) * 2
    b[[3, 9]] = float("-inf")
    for t in (1.0, 0.5):
        with_bias = sample_categorical(x, t, torch.Generator().manual_seed(1), bias=b)
        added = sample_categorical(x + b, t, torch.Generator().manual_seed(1))
        assert torch.equal(with_bias, added)  # the kernel adds in float32 exactly as torch does
        assert not ((with_bias == 3) | (with_bias == 9)).any()
    assert torch.equal(sample_categorical(x, 0.0, bias=b), (x + b).argmax(-1))
    for method in SAMPLERS:
        draws = sample_categorical(x, 1.0, torch.Generator().manual_seed(2), method, bias=b)
        assert not ((draws == 3) | (draws == 9)).any(), method


@pytest.mark.slow
def test_inverse_cdf_follows_the_softmax_over_many_categories():
    """Chi-square over 700 categories (three blocks of partial sums), temperature 0.8."""
    from scipy.stats import chi2

    vocab, n, temperature = 700, 300_000, 0.8
    logits = torch.linspace(-0.8, 0.8, vocab)[torch.randperm(vocab, generator=torch.Generator().manual_seed(0))]
    draws = sample_categorical(logits.expand(n, vocab), temperature, torch.Generator().manual_seed(6))
    probs = torch.softmax(logits.double() / temperature, -1)
    counts = torch.bincount(draws, minlength=vocab).double()
    assert chi_square(counts, probs) < chi2.ppf(0.999, vocab - 1)


def test_inverse_cdf_does_not_depend_on_threads_or_row_blocks():
    logits = torch.randn(257, 1000, generator=torch.Generator().manual_seed(8))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sample_categorical(logits, 1.0, torch.Generator().manual_seed(9))
        torch.set_num_threads(2)
        two = sample_categorical(logits, 1.0, torch.Generator().manual_seed(9))
    finally:
        torch.set_num_threads(before)
    gen = torch.Generator().manual_seed(9)
    blocks = torch.cat([sample_categorical(logits[lo:lo + 50], 1.0, gen) for lo in range(0, 257, 50)])
    assert torch.equal(one, two) and torch.equal(one, blocks)


def test_inverse_cdf_agrees_with_the_previous_implementation_draw_for_draw():
    """``softmax_inverse_cdf`` (the implementation before the one-pass kernel) maps the same uniform stream
    through the same inverse CDF: the draws agree except within float32 rounding of an interval end."""
    logits = torch.randn(2000, 5000, generator=torch.Generator().manual_seed(10)) * 2
    new = sample_categorical(logits, 1.0, torch.Generator().manual_seed(12))
    old = sample_categorical(logits, 1.0, torch.Generator().manual_seed(12), "softmax_inverse_cdf")
    assert (new == old).float().mean() > 0.995


@pytest.mark.parametrize("method", sorted(SAMPLERS))
def test_rows_without_a_distribution_are_rejected(method):
    ok = torch.zeros(3, 400)
    bad_rows = [float("nan"), float("inf")]
    for value in bad_rows:
        bad = ok.clone()
        bad[1, 123] = value
        with pytest.raises(ValueError, match="non-finite"):
            sample_categorical(bad, 1.0, method=method)
    bad = ok.clone()
    bad[2] = float("-inf")
    with pytest.raises(ValueError, match="non-finite"):
        sample_categorical(bad, 1.0, method=method)
    with pytest.raises(ValueError, match="non-finite"):  # all banned by the bias
        sample_categorical(ok, 1.0, method=method, bias=torch.full((400,), float("-inf")))
    with pytest.raises(ValueError, match="non-finite"):  # logits / temperature overflows float32
        sample_categorical(ok + 1e37, 1e-3, method=method)


def test_lstm_logits_and_bias_add_up_to_the_logits():
    from seqgan_kit.models.lstm_generator import LSTMGenerator

    for eos in (None, 3):
        gen = LSTMGenerator(50, 8, 8, 6, eos_token=eos, pad_token=1, start_token=0)
        state = gen.initial_state(4)
        x, b = gen.logits_and_bias(state)
        torch.testing.assert_close(x + b, gen.logits(state))
        if eos is not None:
            assert torch.isneginf(b[[0, 1]]).all()  # start and PAD stay banned
