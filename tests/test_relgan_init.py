"""RelGAN's initialisers (weilinie/RelGAN utils/ops.py) as the defaults of the ``rmc`` and ``relgan`` kinds."""

import math

import pytest
import torch

from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator, RelGANDiscriminatorConfig
from seqgan_kit.models.rmc_generator import RMCGenerator, RMCGeneratorConfig

TRUNC_SD = 0.8796  # sd of N(0, 1) cut at +-2 (TensorFlow's truncated_normal_initializer)


def check_truncated(weight, std, rel=0.03):
    assert weight.abs().max() <= 2 * std + 1e-7
    assert weight.std().item() == pytest.approx(TRUNC_SD * std, rel=rel)


def test_the_recipe_defaults_are_relgans():
    assert RMCGeneratorConfig().init == RelGANDiscriminatorConfig().init == "relgan"


def test_rmc_generator_relgan_init_embedding_std_and_zero_biases():
    torch.manual_seed(0)
    v = 5000
    gen = RMCGenerator.from_config(RMCGeneratorConfig(head_size=16), vocab_size=v, seq_len=20)
    check_truncated(gen.embedding.weight, 1 / math.sqrt(v))  # [5000, 32]: std 1/sqrt(V), not N(0, 1)
    check_truncated(gen.proj.weight, 1 / math.sqrt(32))  # output layer [V, N*D], D = 32
    check_truncated(gen.input_proj.weight, 1 / math.sqrt(32), rel=0.1)  # [D, E]: 1/sqrt(E), E = 32
    assert gen.proj.bias.abs().max() == 0 and gen.input_proj.bias.abs().max() == 0
    assert all(layer.bias.abs().max() == 0 for layer in gen.mlp)
    assert gen.config()["init"] == "relgan" and RMCGenerator(**gen.config()).init == "relgan"
    old = {k: x for k, x in gen.config().items() if k != "init"}  # a checkpoint from before the key
    torch_gen = RMCGenerator(**old)
    assert torch_gen.init == "torch" and torch_gen.embedding.weight.std().item() == pytest.approx(1.0, rel=0.05)


def test_relgan_discriminator_init_and_a_highway_without_biases():
    torch.manual_seed(0)
    v = 5000
    disc = RelGANDiscriminator.from_config(RelGANDiscriminatorConfig(num_rep=16, num_filters=[100] * 4), v, 20)
    check_truncated(disc.embedding.weight, 1 / math.sqrt(v))
    assert disc.highway.bias is None and not any("highway.bias" in n for n, _ in disc.named_parameters())
    check_truncated(disc.highway.weight, 1 / math.sqrt(400))  # D = 4 x 100 maps
    for k, conv in zip(disc.filter_sizes, disc.convs, strict=True):  # conv2d stddev=None: sqrt(2/(k w)), w = 4
        check_truncated(conv.weight, math.sqrt(2 / (k * 4)), rel=0.1)
        assert conv.bias.abs().max() == 0
    assert disc.fc.bias.abs().max() == 0 and disc.out.bias.abs().max() == 0
    rebuilt = RelGANDiscriminator(**disc.config())
    assert rebuilt.load_state_dict(disc.state_dict()) is not None  # the same parameters: a checkpoint reloads
    old = RelGANDiscriminator(**{k: x for k, x in disc.config().items() if k != "init"})
    assert old.init == "torch" and old.highway.bias is not None  # checkpoints from before keep their layout
