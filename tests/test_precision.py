"""Precision: what stays float32 under a bfloat16 run (noise, sampling probabilities, losses, NLL), the
``runtime.precision = "auto"`` decision, and the bf16 path against float32 on tiny models.

bfloat16 is emulated on a CPU without AMX: slow, but the numbers are the same, so these tests run anywhere.
"""

import math

import pytest
import torch

from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.gumbel import GUMBEL_EPS, gumbel_noise, gumbel_perturb
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator
from seqgan_kit.models.sampling import SAMPLERS, sample_categorical
from seqgan_kit.train.gan_losses import LOSSES, gan_losses

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def tv_floor(p: torch.Tensor, n: int) -> float:
    """Expected total-variation distance between ``p [V]`` and the empirical distribution of ``n`` draws from it
    (normal approximation of each count: ``E|X - np| = sqrt(2 n p (1-p) / pi)``)."""
    p = p.double()
    return float(0.5 * torch.sqrt(2.0 * p * (1.0 - p) / (math.pi * n)).sum())


def tv(draws: torch.Tensor, p: torch.Tensor) -> float:
    """Total-variation distance between the empirical distribution of ``draws [n]`` and ``p [V]``."""
    freq = torch.bincount(draws, minlength=p.numel()).double() / draws.numel()
    return float(0.5 * (freq - p.double()).abs().sum())


TOLERANCE = 1.5
"""A TV within 1.5x its expected sampling value: at V = 50 the TV's sd is ~10% of its mean, so 1.5x is ~5 sd."""


# --------------------------------------------------------------------------- float32 noise and sampling
def test_gumbel_noise_is_float32_and_reaches_float32_extremes():
    g = torch.Generator().manual_seed(0)
    noise = gumbel_noise((2_000_000,), generator=g)
    assert noise.dtype == torch.float32
    # Largest u below 1 in float32 is 1 - 2^-24: the noise can reach -log(2^-24 + 1e-10) = 16.6; in 2M draws the
    # maximum is near log(2M) = 14.5 (P(max < 12) = exp(-2e6 e^-12) ~ 1e-5). bfloat16 u tops out at 5.5.
    top = -math.log(-math.log1p(-(2.0 ** -8)) + GUMBEL_EPS)
    assert top < 5.6
    assert 12.0 < noise.max().item() <= -math.log(2.0 ** -24 * (1 - 2.0 ** -25) + GUMBEL_EPS) + 1e-4


def test_gumbel_perturb_is_float32_and_differentiable_from_bf16_logits():
    logits = torch.randn(4, 7).to(torch.bfloat16).requires_grad_(True)
    with torch.autocast(**BF16):
        out = gumbel_perturb(logits, torch.Generator().manual_seed(1))
    assert out.dtype == torch.float32
    out.sum().backward()
    assert torch.equal(logits.grad, torch.ones_like(logits))


def _first_token_draws(n: int, seed: int):
    """A V = 50 generator's first-token draws by ``gumbel_rollout`` under a bf16 autocast, and the distribution
    its own (bf16-computed) logits define, averaged over the rows."""
    torch.manual_seed(seed)
    gen = LSTMGenerator(50, emb_dim=8, hidden_dim=8, seq_len=1, init_std=1.0)
    with torch.no_grad(), torch.autocast(**BF16):
        hard, soft = gen.gumbel_rollout(n, beta=1.0, generator=torch.Generator().manual_seed(seed + 1))
        logits = gen.logits(gen.initial_state(n))  # [n, V], bf16, the same rows the rollout saw
    p = torch.softmax(logits.float(), dim=-1).double().mean(0)  # [V]
    return gen, hard[:, 0], soft, logits, p


@pytest.mark.slow
def test_bf16_gumbel_rollout_samples_the_model_distribution_within_the_sampling_floor(one_thread):
    n = 400_000
    _, draws, soft, logits, p = _first_token_draws(n, 5)
    assert logits.dtype == torch.bfloat16 and soft.dtype == torch.float32
    floor = tv_floor(p, n)
    assert tv(draws, p) < TOLERANCE * floor, (tv(draws, p), floor)
    # The same draws with the noise drawn and added in bfloat16 (the bug this fixes) miss by far.
    g = torch.Generator().manual_seed(6)
    u = torch.rand(logits.shape, generator=g, dtype=torch.bfloat16)
    biased = (logits - torch.log(-torch.log(u + GUMBEL_EPS) + GUMBEL_EPS)).argmax(-1)
    assert tv(biased, p) > 3 * floor, (tv(biased, p), floor)


@pytest.mark.parametrize("method", sorted(SAMPLERS))
def test_samplers_take_bf16_logits_and_sample_their_distribution(method):
    n = 100_000
    logits = (torch.randn(50, generator=torch.Generator().manual_seed(7)) * 1.5).to(torch.bfloat16)
    p = torch.softmax(logits.float(), 0)
    with torch.autocast(**BF16):
        draws = sample_categorical(logits.expand(n, 50), 1.0, torch.Generator().manual_seed(8), method)
    assert tv(draws, p) < TOLERANCE * tv_floor(p, n)


# --------------------------------------------------------------------------- float32 losses and likelihoods
@pytest.mark.parametrize("loss", LOSSES)
def test_gan_losses_are_float32_from_bf16_logits(loss):
    g = torch.Generator().manual_seed(9)
    real = torch.randn(64, generator=g).to(torch.bfloat16)
    fake = torch.randn(64, generator=g).to(torch.bfloat16)
    with torch.autocast(**BF16):
        d, gl = gan_losses(real, fake, loss)
    exact_d, exact_g = gan_losses(real.double(), fake.double(), loss)
    assert d.dtype == gl.dtype == torch.float32
    assert abs(d.item() - exact_d.item()) < 1e-6 and abs(gl.item() - exact_g.item()) < 1e-6


@pytest.mark.parametrize("disc_kind", ["cnn", "relgan"])
def test_losses_rewards_and_nll_are_float32_under_bf16_autocast(disc_kind, one_thread):
    torch.manual_seed(10)
    v, t = 20, 6
    gen = LSTMGenerator(v, emb_dim=8, hidden_dim=8, seq_len=t)
    disc = (CNNDiscriminator(v, t, emb_dim=8, filter_sizes=[2, 3], num_filters=[4, 4]) if disc_kind == "cnn"
            else RelGANDiscriminator(v, t, emb_dim=8, num_rep=4, filter_sizes=[2, 3], num_filters=[4, 4], fc_dim=5))
    real = torch.randint(0, v, (16, t))
    with torch.autocast(**BF16):
        _, soft = gen.gumbel_rollout(16, beta=2.0)
        d_loss, g_loss = gan_losses(disc.gan_logits(real), disc.gan_logits(soft), "rsgan")
        nll = gen.nll(real)
        lp = gen.log_probs(real)
        reward = disc.prob_real(real) if hasattr(disc, "prob_real") else None
    assert d_loss.dtype == g_loss.dtype == nll.dtype == lp.dtype == torch.float32
    assert reward is None or reward.dtype == torch.float32
    # a bf16 loss near log 2 would read 0.6875 or 0.6914: float32 has more than 8 significant bits
    assert torch.tensor(d_loss.item()).to(torch.bfloat16).item() != d_loss.item()


# --------------------------------------------------------------------------- the bf16 path against float32
def test_hoisted_lstm_is_the_lstm_layer():
    torch.manual_seed(11)
    gen = LSTMGenerator(40, emb_dim=16, hidden_dim=16, seq_len=12)
    emb = gen.embedding(gen.inputs(torch.randint(0, 40, (32, 12))))  # [B, T, E]
    assert torch.allclose(gen._lstm_hoisted(emb), gen.lstm(emb)[0], atol=1e-6, rtol=0)


def _loss_and_grad(module, loss_fn, bf16: bool):
    module.zero_grad()
    with torch.autocast(**BF16, enabled=bf16):
        loss = loss_fn()
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])
    return loss, grad


def test_bf16_mle_loss_and_gradient_are_close_to_float32(one_thread):
    """Tolerance: loss within 1e-3 relative, gradient within 3% (relative L2); measured 7e-7 and 0.7%."""
    from seqgan_kit.train.mle import mle_loss

    torch.manual_seed(12)
    gen = LSTMGenerator(40, emb_dim=16, hidden_dim=16, seq_len=12)
    seqs = torch.randint(0, 40, (32, 12))
    l32, g32 = _loss_and_grad(gen, lambda: mle_loss(gen, seqs), bf16=False)
    l16, g16 = _loss_and_grad(gen, lambda: mle_loss(gen, seqs), bf16=True)
    assert l16.dtype == torch.float32
    assert abs(l16.item() - l32.item()) < 1e-3 * l32.item()
    assert 0 < ((g16 - g32).norm() / g32.norm()).item() < 0.03  # > 0: the bf16 path did run in bf16


@pytest.mark.parametrize("disc_kind", ["cnn", "relgan"])
def test_bf16_discriminator_loss_and_gradient_are_close_to_float32(disc_kind, one_thread):
    """Tolerance: loss within 2e-3 relative, gradient within 10% (relative L2); measured 4e-4 / 6e-5 and
    2.3% / 5.3% (CNN / RelGAN). The fake rows use a quarter of the vocabulary so that the gradient is not a
    near-cancellation of two random batches (then max-pooling picking another window within bfloat16 rounding
    moves whole gradient rows: 7-23% on the same models)."""
    torch.manual_seed(13)
    v, t = 40, 12
    disc = (CNNDiscriminator(v, t, emb_dim=16, filter_sizes=[2, 3], num_filters=[8, 8]) if disc_kind == "cnn"
            else RelGANDiscriminator(v, t, emb_dim=16, num_rep=4, filter_sizes=[2, 3], num_filters=[8, 8],
                                     fc_dim=8)).eval()
    real, fake = torch.randint(0, v, (32, t)), torch.randint(0, v // 4, (32, t))

    def loss():
        return gan_losses(disc.gan_logits(real), disc.gan_logits(fake), "rsgan")[0]

    l32, g32 = _loss_and_grad(disc, loss, bf16=False)
    l16, g16 = _loss_and_grad(disc, loss, bf16=True)
    assert l16.dtype == torch.float32
    assert abs(l16.item() - l32.item()) < 2e-3 * l32.item()
    assert 0 < ((g16 - g32).norm() / g32.norm()).item() < 0.1


# --------------------------------------------------------------------------- runtime.precision = "auto"
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
AMD_EPYC_FLAGS = frozenset("fpu sse2 avx avx2 fma bmi2 sha_ni".split())
SAPPHIRE_RAPIDS_FLAGS = AMD_EPYC_FLAGS | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}


@pytest.mark.parametrize("device, flags, cuda_bf16, expected", [
    (CPU, AMD_EPYC_FLAGS, None, "fp32"),  # AVX2 only: bf16 emulated
    (CPU, AMD_EPYC_FLAGS | {"avx512f", "avx512_bf16"}, None, "fp32"),  # AVX-512 bf16 dot products, no tiles
    (CPU, SAPPHIRE_RAPIDS_FLAGS, None, "bf16"),
    (CPU, frozenset(), None, "fp32"),  # no /proc/cpuinfo
    (CUDA, frozenset(), True, "bf16"),
    (CUDA, SAPPHIRE_RAPIDS_FLAGS, False, "fp32"),  # a GPU without bf16: the host's AMX does not matter
])
def test_auto_precision_picks_bf16_only_where_it_is_fast(device, flags, cuda_bf16, expected):
    from seqgan_kit.device import choose_precision

    precision, reason = choose_precision("auto", device, flags=flags, cuda_bf16=cuda_bf16, env={})
    assert precision == expected and reason.startswith("auto")
    # explicit settings are kept, and the environment pin applies to auto only
    for explicit in ("fp32", "bf16"):
        assert choose_precision(explicit, device, flags=flags, cuda_bf16=cuda_bf16, env={}) == (
            explicit, "set in the recipe")
    pinned = {"SEQGAN_KIT_AUTO_PRECISION": "bf16"}
    assert choose_precision("auto", device, flags=flags, cuda_bf16=cuda_bf16, env=pinned)[0] == "bf16"
    assert choose_precision("fp32", device, flags=flags, cuda_bf16=cuda_bf16, env=pinned)[0] == "fp32"


def test_cpu_flags_reads_cpuinfo(tmp_path):
    from seqgan_kit.device import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16", "amx_tile"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_a_bad_auto_pin_is_one_line():
    from seqgan_kit.device import choose_precision
    from seqgan_kit.errors import UserError

    with pytest.raises(UserError, match="SEQGAN_KIT_AUTO_PRECISION='fp16': expected fp32 or bf16"):
        choose_precision("auto", CPU, flags=frozenset(), env={"SEQGAN_KIT_AUTO_PRECISION": "fp16"})


@pytest.mark.parametrize("amx, expected", [(False, "fp32"), (True, "bf16")])
def test_a_run_prints_and_records_its_precision_choice(amx, expected, monkeypatch, tmp_path, capsys, one_thread):
    import json

    from seqgan_kit import device as device_module
    from seqgan_kit.cli import main

    from .tiny import RECIPE, TINY

    monkeypatch.delenv("SEQGAN_KIT_AUTO_PRECISION", raising=False)
    monkeypatch.setattr(device_module, "cpu_flags", lambda path=None: SAPPHIRE_RAPIDS_FLAGS if amx
                        else AMD_EPYC_FLAGS)
    run = tmp_path / "run"
    overrides = [*TINY, "mle.epochs=1"]
    assert main(["train", RECIPE, "--run-dir", str(run), *[a for o in overrides for a in ("--set", o)]]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["precision"] == expected and "amx" in info["precision_reason"].lower()
    assert f"precision {expected} (auto" in capsys.readouterr().out
    config = (run / "config.toml").read_text()
    assert 'precision = "auto"' in config  # the recipe's default, resolved per machine
