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

from ..data.corpus import prepare_text_data
from ..data.data_config import DataConfig
from ..data.tokenization import BOS, EOS, PAD, eval_tokenizer
from ..distributed import Ranks
from ..metrics.bleu import BleuReferences, self_bleu
from ..metrics.nll import sequence_nll_sum
from ..models.generator import SequenceGenerator
from .evaluation import EvalConfig

TOKENIZER_DIR = "tokenizer"
"""Run-directory folder holding ``vocab.json`` (and ``spm.model`` for sentencepiece)."""


class TextTask:
    """Tokenizer, vocabulary, ``train [N, T]`` and ``test [M, T]`` id tensors (``T = data.max_len + 1``)."""

    start_token, eos_token, pad_token = BOS, EOS, PAD

    def __init__(self, cfg: DataConfig, eval_cfg: EvalConfig, workdir: Path, device: torch.device,
                 seed: int) -> None:
        self.cfg = cfg
        self.eval_cfg = eval_cfg
        self.data = prepare_text_data(cfg, workdir, seed=seed)
        self.tokenizer = self.data.tokenizer
        self.vocab = self.data.vocab
        self.train = self.data.train.to(device)
        self.test = self.data.test.to(device)
        self.orders = sorted(set(cfg.bleu_orders))
        self._references: BleuReferences | None = None
        self._split = eval_tokenizer(cfg.eval_tokenizer, self.tokenizer)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def seq_len(self) -> int:
        return self.cfg.max_len + 1

    def special_tokens(self) -> dict[str, int | None]:
        """The generator's special tokens: BOS starts, EOS ends, PAD fills."""
        return {"start_token": BOS, "eos_token": EOS, "pad_token": PAD}

    def fingerprint(self) -> dict[str, str | int]:
        """What identifies the task's data (stored in checkpoints): corpus and vocabulary."""
        return {"kind": "text", "corpus": self.cfg.name, "vocab": self.vocab.fingerprint, "size": len(self.vocab)}

    # ------------------------------------------------------------------ text
    def eval_tokens(self, texts: list[str]) -> list[list[str]]:
        """How BLEU splits text: ``data.eval_tokenizer``, or the model's own tokenizer when empty."""
        return [self._split(t) for t in texts]

    def references(self) -> BleuReferences:
        """The BLEU references (the first ``eval.bleu_references`` test examples), indexed once."""
        if self._references is None:
            limit = self.eval_cfg.bleu_references or None
            refs = [r for r in self.eval_tokens(self.data.test_lines[:limit]) if r]
            self._references = BleuReferences(refs, max(self.orders))
        return self._references

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, generator: SequenceGenerator, rng: torch.Generator | None = None,
                 ranks: Ranks | None = None) -> dict[str, float]:
        """``nll_test`` and, when ``eval.bleu_samples > 0``, BLEU-n / Self-BLEU-n / mean length of samples
        drawn with ``rng``.

        With several ``ranks`` each scores its share of the test set and samples its share of
        ``eval.bleu_samples`` (with its own ``rng``); rank 0 gathers the samples and scores BLEU and Self-BLEU,
        so only rank 0's result has them.
        """
        ranks = ranks or Ranks()
        e = self.eval_cfg
        t_sum, t_count = ranks.sums(*sequence_nll_sum(generator, ranks.shard(self.test), e.batch_size))
        result = {"nll_test": t_sum / max(t_count, 1)}
        if e.bleu_samples:
            was_training = generator.training
            generator.eval()
            seqs = generator.sample(ranks.count(e.bleu_samples), generator=rng, batch_size=e.batch_size)  # [S_r, T]
            generator.train(was_training)
            lengths = (generator.token_mask(seqs) & (seqs != self.eos_token)).sum(dim=1)  # [S_r]
            parts = ranks.gather((self.eval_tokens(self.data.decode(seqs)), lengths.tolist()))
            if not ranks.is_main:
                return result
            hyps = [h for part, _ in parts for h in part]
            lengths = torch.tensor([n for _, part in parts for n in part], dtype=torch.float64)  # [S]
            bleu = self.references().score(hyps, tuple(self.orders), False)
            selfb = self_bleu(hyps, orders=self.orders)
            for n in self.orders:
                result[f"bleu{n}"] = float(bleu[n])
                result[f"self_bleu{n}"] = float(selfb[n])
            result["mean_len"] = float(lengths.mean())
        return result
