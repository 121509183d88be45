"""The SeqGAN highway CNN discriminator."""

import pytest
import torch
import torch.nn.functional as F

from seqgan_kit.errors import UserError
from seqgan_kit.models.discriminator import CNNDiscriminator
from seqgan_kit.models.discriminator import CNNDiscriminatorConfig as DiscriminatorConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw) -> CNNDiscriminator:
    torch.manual_seed(0)
    args = dict(vocab_size=12, seq_len=6, emb_dim=8, filter_sizes=[1, 2, 3, 6], num_filters=[4, 5, 6, 3])
    args.update(kw)
    return CNNDiscriminator(**args)


def test_output_shapes():
    d = tiny()
    seqs = torch.randint(0, 12, (7, 6))
    assert d(seqs).shape == (7, 2)
    assert d.features(seqs).shape == (7, 18)
    assert d.prob_real(seqs).shape == (7,)
    assert d.prob_real(seqs[:0]).shape == (0,)


def test_paper_configuration_has_1720_feature_maps():
    d = CNNDiscriminator.from_config(DiscriminatorConfig(), vocab_size=5000, seq_len=20)
    assert d.num_features == 1720
    assert d.highway.weight.shape == (2 * 1720, 1720)
    assert [c.weight.shape for c in d.convs][-1] == (160, 20 * 64)
    assert d.out.weight.shape == (2, 1720)
    assert d(torch.randint(0, 5000, (3, 20))).shape == (3, 2)


def test_conv_is_a_full_width_2d_convolution():
    """Each filter of width k equals Conv2d with kernel [k, E] over the [T, E] embedding image, followed by
    max-over-time pooling and ReLU; then the highway layer as specified."""
    d = tiny()
    seqs = torch.randint(0, 12, (5, 6))
    emb = d.embedding(seqs).unsqueeze(1)  # [B, 1, T, E]
    pooled = []
    for k, conv in zip(d.filter_sizes, d.convs, strict=True):
        kernel = conv.weight.view(-1, 1, k, d.emb_dim)  # [F, k*E] -> [F, 1, k, E]
        maps = F.relu(F.conv2d(emb, kernel, conv.bias))  # [B, F, T-k+1, 1]
        pooled.append(maps.amax(dim=(2, 3)))  # [B, F]
    x = torch.cat(pooled, dim=1)  # [B, D]
    dd = d.num_features
    w, b = d.highway.weight, d.highway.bias
    gate = torch.sigmoid(x @ w[dd:].T + b[dd:])
    expected = gate * F.relu(x @ w[:dd].T + b[:dd]) + (1 - gate) * x
    torch.testing.assert_close(d.features(seqs), expected, rtol=1e-5, atol=1e-6)
    d.eval()
    torch.testing.assert_close(d(seqs), expected @ d.out.weight.T + d.out.bias, rtol=1e-5, atol=1e-6)


def test_reference_initialisation():
    d = CNNDiscriminator.from_config(DiscriminatorConfig(), vocab_size=50, seq_len=20)
    assert d.embedding.weight.abs().max() <= 1.0
    for conv in d.convs:
        assert conv.weight.abs().max() <= 0.2 + 1e-6  # truncated at 2 std
        assert torch.all(conv.bias == 0.1)
    assert torch.all(d.out.bias == 0.1) and d.out.weight.abs().max() <= 0.2 + 1e-6
    assert torch.all(d.highway.bias == 0)


def test_prob_real_is_a_probability_without_dropout_in_any_mode():
    d = tiny(dropout_keep=0.5)
    seqs = torch.randint(0, 12, (64, 6))
    d.train()
    assert not torch.equal(d(seqs), d(seqs))  # dropout is active in training mode
    p_train = d.prob_real(seqs, batch_size=10)
    assert d.training  # mode restored
    d.eval()
    p_eval = d.prob_real(seqs)
    assert not d.training
    # p_train was scored in chunks of 10 rows, p_eval in one: different batchings round differently on some CPUs
    torch.testing.assert_close(p_train, p_eval, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p_eval, torch.softmax(d(seqs), dim=-1)[:, 1].detach(), rtol=1e-5, atol=1e-6)
    assert ((p_eval >= 0) & (p_eval <= 1)).all()
    assert not p_eval.requires_grad


def test_inconsistent_sizes_are_value_errors_and_the_config_names_the_key():
    with pytest.raises(ValueError, match="filter of width 20 exceeds the sequence length 10"):
        CNNDiscriminator.from_config(DiscriminatorConfig(), vocab_size=50, seq_len=10)
    with pytest.raises(ValueError, match="equal length"):
        tiny(num_filters=[4, 5])
    with pytest.raises(ValueError, match="dropout_keep"):
        tiny(dropout_keep=0.0)
    with pytest.raises(UserError, match="discriminator.filter_sizes: filter of width 20 exceeds"):
        DiscriminatorConfig().check_length(10, "oracle.seq_len")


def test_input_shape_is_checked():
    d = tiny()
    with pytest.raises(ValueError, match=r"\[B, 6\]"):
        d(torch.randint(0, 12, (3, 5)))
    with pytest.raises(ValueError, match=r"\[B, 6\]"):
        d.prob_real(torch.randint(0, 12, (6,)))
    with pytest.raises(ValueError, match="integer"):
        d(torch.zeros(3, 6))


def test_l2_term_matches_hand_computation():
    d = tiny(l2_reg=0.2).eval()
    seqs = torch.randint(0, 12, (8, 6))
    labels = torch.tensor([0, 1] * 4)
    w, b = d.out.weight.detach(), d.out.bias.detach()
    l2 = sum(v * v for v in w.flatten().tolist()) / 2 + sum(v * v for v in b.tolist()) / 2
    ce = F.cross_entropy(d(seqs), labels)
    torch.testing.assert_close(d.loss(seqs, labels), ce + 0.2 * torch.tensor(l2), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(d.l2_penalty(), torch.tensor(l2), rtol=1e-6, atol=1e-7)


def test_config_round_trip():
    d = tiny()
    e = CNNDiscriminator(**d.config())
    e.load_state_dict(d.state_dict())
    seqs = torch.randint(0, 12, (4, 6))
    assert torch.equal(d.eval()(seqs), e.eval()(seqs))


def test_learns_a_separable_toy_task():
    """Real: sequences over the even tokens; fake: over the odd tokens. A few Adam steps separate them."""
    torch.manual_seed(0)
    d = CNNDiscriminator(20, 8, emb_dim=8, filter_sizes=[1, 2, 3], num_filters=[8, 8, 8])
    real = torch.randint(0, 10, (64, 8)) * 2
    fake = torch.randint(0, 10, (64, 8)) * 2 + 1
    seqs = torch.cat([real, fake])
    labels = torch.cat([torch.ones(64, dtype=torch.long), torch.zeros(64, dtype=torch.long)])
    before = [p.detach().clone() for p in d.parameters()]
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    d.train()
    for _ in range(30):
        opt.zero_grad()
        d.loss(seqs, labels).backward()
        opt.step()
    accuracy = ((d.prob_real(seqs) > 0.5).long() == labels).float().mean()
    assert accuracy >= 0.95
    assert all(not torch.equal(a, b) for a, b in zip(before, d.parameters(), strict=True))
