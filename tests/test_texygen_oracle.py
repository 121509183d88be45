"""``oracle.kind = "texygen"``: RelGAN's (Texygen's) OracleLstm, random N(0, 1) from a seed."""

import itertools
import json
import math

import pytest
import torch

from seqgan_kit.cli.main import main
from seqgan_kit.config import ConfigError
from seqgan_kit.errors import UserError
from seqgan_kit.metrics.nll import sequence_nll
from seqgan_kit.models.oracle import build_oracle, random_oracle, texygen_oracle
from seqgan_kit.tasks.synthetic import OracleConfig

from .tiny import RECIPE, TINY


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_deterministic_from_its_seed_with_the_reference_sizes_and_distribution():
    a, b, c = texygen_oracle(7), texygen_oracle(7), texygen_oracle(8)
    pa, pb, pc = params(a), params(b), params(c)
    assert all(torch.equal(pa[n], pb[n]) for n in pa) and not torch.equal(pa["proj.weight"], pc["proj.weight"])
    assert (a.vocab_size, a.emb_dim, a.hidden_dim, a.seq_len) == (5000, 32, 32, 20)
    assert pa["embedding.weight"].shape == (5000, 32) and pa["lstm.weight_ih_l0"].shape == (128, 32)
    assert pa["lstm.bias_hh_l0"].abs().max() == 0  # one bias per gate, as in the reference cell
    for name in ("embedding.weight", "lstm.weight_hh_l0", "proj.weight", "proj.bias"):  # N(0, 1)
        x = pa[name]
        assert x.mean().item() == pytest.approx(0, abs=5 / math.sqrt(x.numel()))
        assert x.std().item() == pytest.approx(1, rel=0.05)
    assert not any(p.requires_grad for p in a.parameters())
    assert not torch.equal(pa["proj.weight"], params(random_oracle(7))["proj.weight"])  # another construction


def test_wi_equals_uc_as_the_shared_tensorflow_op_seed_makes_them():
    w = params(texygen_oracle(3, vocab_size=50))
    h = 32  # PyTorch gate blocks: i, f, g (cell candidate), o
    wi = w["lstm.weight_ih_l0"][:h]  # Wi.T  [H, E]
    uc = w["lstm.weight_hh_l0"][2 * h:3 * h]  # Uc.T  [H, H]
    assert torch.equal(wi, uc)
    assert not torch.equal(w["lstm.weight_ih_l0"][h:2 * h], w["lstm.weight_hh_l0"][h:2 * h])


def test_samples_follow_the_oracles_own_likelihood():
    """Exact enumeration on a tiny oracle: sequence probabilities sum to 1 and sample frequencies match them."""
    oracle = texygen_oracle(1, vocab_size=4, emb_dim=3, hidden_dim=3, seq_len=2)
    seqs = torch.tensor(list(itertools.product(range(4), repeat=2)))  # [16, 2]
    probs = oracle.log_probs(seqs).double().sum(1).exp()  # [16]
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    n = 8000
    samples = oracle.sample(n, generator=torch.Generator().manual_seed(0))  # [n, 2]
    counts = torch.bincount(samples[:, 0] * 4 + samples[:, 1], minlength=16).double()
    expected = probs * n
    assert ((counts - expected).abs() <= 5 * expected.sqrt() + 5).all()  # 5 sd, binomial


def test_the_config_refuses_weights_with_the_texygen_kind_and_an_unknown_kind():
    with pytest.raises(ConfigError, match="weights"):
        OracleConfig(kind="texygen", weights="x.npz").validate()
    with pytest.raises(ConfigError, match="kind"):
        OracleConfig(kind="leakgan").validate()
    with pytest.raises(UserError, match="texygen"):
        build_oracle("x.npz", 0, 50, 4, 4, 5, 0, kind="texygen")
    assert torch.equal(params(build_oracle("", 5, 50, 4, 4, 5, 0, kind="texygen"))["proj.bias"],
                       params(texygen_oracle(5, 50, 4, 4, 5))["proj.bias"])


@pytest.mark.slow
def test_eval_nll_oracle_scores_with_a_texygen_run_s_own_oracle(tmp_path, capsys):
    """``eval nll-oracle --oracle RUN_DIR`` rebuilds the run's oracle of its own kind (the checkpoint's hash
    check passes) and gives the NLL of that oracle, not of a SeqGAN-kind oracle from the same seed."""
    run = tmp_path / "run"
    sets = [a for kv in [*TINY, "oracle.kind=texygen", "mle.epochs=1"] for a in ("--set", kv)]
    assert main(["train", RECIPE, *sets,
                 "--run-dir", str(run), "--threads", "1"]) == 0
    samples = tmp_path / "s.txt"
    seqs = torch.randint(0, 40, (20, 6), generator=torch.Generator().manual_seed(0))
    samples.write_text("".join(" ".join(map(str, row)) + "\n" for row in seqs.tolist()))
    capsys.readouterr()
    assert main(["eval", "nll-oracle", "--oracle", str(run), "--samples", str(samples), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["nll_oracle"]
    expected = sequence_nll(build_oracle("", 88, 40, 8, 8, 6, 0, kind="texygen"), seqs)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(sequence_nll(build_oracle("", 88, 40, 8, 8, 6, 0), seqs), rel=1e-3)
