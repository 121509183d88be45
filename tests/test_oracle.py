import numpy as np
import pytest
import torch

from seqgan_kit.data.tokens import read_token_file
from seqgan_kit.errors import UserError
from seqgan_kit.metrics.nll import sequence_nll
from seqgan_kit.models.oracle import load_oracle_npz, random_oracle

from .conftest import require_shared


def reference_nll(params: dict[str, np.ndarray], seqs: np.ndarray) -> np.ndarray:
    """Per-token NLL [N, T] from the reference cell equations, written out in float64 NumPy."""

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    p = {k: v.astype(np.float64) for k, v in params.items()}
    n, length = seqs.shape
    h = np.zeros((n, p["p02"].shape[0]))
    c = np.zeros_like(h)
    x = p["p00"][np.zeros(n, dtype=int)]  # start token 0
    out = np.zeros((n, length))
    for t in range(length):
        i = sigmoid(x @ p["p01"] + h @ p["p02"] + p["p03"])
        f = sigmoid(x @ p["p04"] + h @ p["p05"] + p["p06"])
        o = sigmoid(x @ p["p07"] + h @ p["p08"] + p["p09"])
        g = np.tanh(x @ p["p10"] + h @ p["p11"] + p["p12"])
        c = f * c + i * g
        h = o * np.tanh(c)
        logits = h @ p["p13"] + p["p14"]
        m = logits.max(1, keepdims=True)
        logz = (m + np.log(np.exp(logits - m).sum(1, keepdims=True)))[:, 0]
        out[:, t] = logz - logits[np.arange(n), seqs[:, t]]
        x = p["p00"][seqs[:, t]]
    return out


def random_params(rng, V=13, E=4, H=5) -> dict[str, np.ndarray]:
    shapes = {"p00": (V, E), "p13": (H, V), "p14": (V,)}
    for gate in range(4):
        shapes.update({f"p{1 + 3 * gate:02d}": (E, H), f"p{2 + 3 * gate:02d}": (H, H), f"p{3 + 3 * gate:02d}": (H,)})
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_npz_loading_follows_the_reference_equations(tmp_path):
    rng = np.random.default_rng(0)
    params = random_params(rng)
    path = tmp_path / "oracle.npz"
    np.savez(path, **params)
    oracle = load_oracle_npz(path, seq_len=7)
    seqs = rng.integers(0, 13, size=(9, 7))
    ours = -oracle.log_probs(torch.from_numpy(seqs)).double().numpy()
    np.testing.assert_allclose(ours, reference_nll(params, seqs), rtol=1e-4, atol=1e-4)


def test_wrong_shapes_and_missing_keys_are_clear_errors(tmp_path):
    params = random_params(np.random.default_rng(1))
    bad = dict(params, p05=np.zeros((5, 4), np.float32))
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(UserError, match=r"p05 has shape \(5, 4\), expected \(5, 5\)"):
        load_oracle_npz(tmp_path / "bad.npz")
    missing = {k: v for k, v in params.items() if k != "p13"}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(UserError, match="missing keys p13"):
        load_oracle_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="not a valid .npz"):
        load_oracle_npz(tmp_path / "junk.npz")


def test_random_oracle_is_a_function_of_its_seed():
    a, b, c = random_oracle(5, 50, 8, 8, 6), random_oracle(5, 50, 8, 8, 6), random_oracle(6, 50, 8, 8, 6)
    assert torch.equal(a.embedding.weight, b.embedding.weight)
    assert not torch.equal(a.embedding.weight, c.embedding.weight)
    assert abs(a.proj.weight.std().item() - 1.0) < 0.1
    assert not any(p.requires_grad for p in a.parameters())


@pytest.mark.slow
def test_reference_oracle_scores_the_2016_data_and_its_own_samples():
    oracle = load_oracle_npz(require_shared("oracle", "seqgan_target_params.npz"))
    data = read_token_file(require_shared("oracle", "seqgan_real_data_9984.txt"), 5000, 20)
    assert data.shape == (9984, 20)
    assert abs(sequence_nll(oracle, data) - 5.761) <= 0.005
    samples = oracle.sample(9984, generator=torch.Generator().manual_seed(11), batch_size=512)
    assert abs(sequence_nll(oracle, samples) - 5.754) <= 0.01
