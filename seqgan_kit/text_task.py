"""The real-text task: a corpus supplies the training and held-out examples; metrics compare samples to it.

Evaluation during training (every ``eval_every`` epochs/iterations, on the held-out split):

- ``nll_test``: the generator's mean per-token NLL on the test examples (padding after EOS excluded).
- ``bleu{n}`` for each ``data.bleu_orders`` n: ``eval.bleu_samples`` fresh samples (temperature 1) scored
  against ``eval.bleu_references`` test examples (the text-GAN protocol, nltk-exact); ``self_bleu{n}`` of the
  same samples; ``mean_len`` (tokens before EOS) of the samples.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import ExperimentConfig
from .corpus import prepare_text_data
from .generator import Generator
from .metrics.bleu import BleuReferences, self_bleu
from .metrics.nll import nll_test
from .textmodel import TOKENIZER_DIR, eval_splitter
from .tokenization import BOS, EOS, PAD

__all__ = ["TOKENIZER_DIR", "TextTask"]


class TextTask:
    """Tokenizer, vocabulary, ``train [N, T]`` and ``test [M, T]`` id tensors (``T = data.max_len + 1``)."""

    start_token, eos_token, pad_token = BOS, EOS, PAD

    def __init__(self, cfg: ExperimentConfig, workdir: Path, device: torch.device) -> None:
        self.cfg = cfg
        self.data = prepare_text_data(cfg.data, workdir, seed=cfg.seed)
        self.tokenizer = self.data.tokenizer
        self.vocab = self.data.vocab
        self.train = self.data.train.to(device)
        self.test = self.data.test.to(device)
        self.orders = sorted(set(cfg.data.bleu_orders))
        self._references: BleuReferences | None = None
        self._split = eval_splitter(cfg, self.tokenizer)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def seq_len(self) -> int:
        return self.cfg.seq_len

    # ------------------------------------------------------------------ text
    def eval_tokens(self, texts: list[str]) -> list[list[str]]:
        """How BLEU splits text: ``data.eval_tokenizer``, or the model's own tokenizer when empty."""
        return [self._split(t) for t in texts]

    def references(self) -> BleuReferences:
        """The BLEU references (the first ``eval.bleu_references`` test examples), indexed once."""
        if self._references is None:
            limit = self.cfg.eval.bleu_references or None
            refs = [r for r in self.eval_tokens(self.data.test_lines[:limit]) if r]
            self._references = BleuReferences(refs, max(self.orders))
        return self._references

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, generator: Generator) -> dict[str, float]:
        """``nll_test`` and, when ``eval.bleu_samples > 0``, BLEU-n / Self-BLEU-n / mean length of samples."""
        e = self.cfg.eval
        result = {"nll_test": nll_test(generator, self.test, e.batch_size)}
        if e.bleu_samples:
            was_training = generator.training
            generator.eval()
            seqs = generator.sample(e.bleu_samples, batch_size=e.batch_size)  # [S, T]
            generator.train(was_training)
            hyps = self.eval_tokens(self.data.decode(seqs))
            bleu = self.references().score(hyps, tuple(self.orders), False)
            selfb = self_bleu(hyps, orders=self.orders)
            for n in self.orders:
                result[f"bleu{n}"] = float(bleu[n])
                result[f"self_bleu{n}"] = float(selfb[n])
            lengths = (generator.token_mask(seqs) & (seqs != self.eos_token)).sum(dim=1)  # [S]
            result["mean_len"] = float(lengths.float().mean())
        return result
