"""seqgan-kit: adversarial text generation in PyTorch (SeqGAN and successors), with exact, fast metrics."""

__version__ = "0.1.0"
