"""The real-text task: a corpus supplies the training and held-out examples; metrics compare samples to it.

Evaluation during training (every ``eval_every`` epochs/iterations, on the held-out split):

- ``nll_test``: the generator's mean per-token NLL on the test examples, padding excluded: in ``eos`` text the
  positions up to and including EOS; in ``pad`` text (``data.ending = "pad"``) the positions up to and including
  the first PAD (the PAD that ends the sentence plays EOS's part), so the two modes' ``nll_test`` count the same
  positions of the same sentences (except a sentence of exactly max_tokens tokens, which has no PAD). With
  ``eval.test_rows = N`` only the first N test examples are scored.
- ``nll_gen`` (when ``eval.nll_gen``): RelGAN's NLL_gen, the mean per-token NLL on the *training* examples with
  RelGAN's normalisation: in ``pad`` text every position, PADs included (its MLE loss divided by T * B); in
  ``eos`` text the positions up to and including EOS (the only tokens an EOS model has).
- ``bleu{n}`` for each ``data.bleu_orders`` n: ``eval.bleu_samples`` fresh samples (temperature 1) scored
  against ``eval.bleu_references`` test examples (the text-GAN protocol, nltk-exact); ``self_bleu{n}`` of the
  same samples; ``mean_len`` of the samples: tokens before the first EOS, or before the first PAD in ``pad`` text
  (a sample's tokens after a PAD are decoded into its text but not counted here).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.corpus import prepare_text_data, row_lengths
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
    """Tokenizer, vocabulary, ``train [N, T]`` and ``test [M, T]`` id tensors (``T = data.max_tokens + 1`` for
    ``data.ending = "eos"``, ``data.max_tokens`` for ``"pad"``)."""

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
    def pad_ending(self) -> bool:
        """RelGAN's fixed-length text (``data.ending = "pad"``)?"""
        return self.cfg.ending == "pad"

    @property
    def seq_len(self) -> int:
        return self.cfg.max_tokens if self.pad_ending else self.cfg.max_tokens + 1

    def special_tokens(self) -> dict[str, object]:
        """The generator's special tokens. ``eos``: BOS starts, EOS ends, PAD fills. ``pad``: BOS starts, no EOS,
        PAD is an ordinary token the model emits; BOS and EOS (never in the data) are banned."""
        if self.pad_ending:
            return {"start_token": BOS, "pad_token": PAD, "banned_tokens": (BOS, EOS)}
        return {"start_token": BOS, "eos_token": EOS, "pad_token": PAD}

    def fingerprint(self) -> dict[str, str | int]:
        """What identifies the task's data (stored in checkpoints): corpus and vocabulary."""
        out: dict[str, str | int] = {"kind": "text", "corpus": self.cfg.name, "vocab": self.vocab.fingerprint,
                                     "size": len(self.vocab)}
        if self.pad_ending:  # only then, so that an eos run's fingerprint is what it always was
            out["ending"] = "pad"
        return out

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
        """``nll_test``, ``nll_gen`` (when ``eval.nll_gen``) and, when ``eval.bleu_samples > 0``, BLEU-n /
        Self-BLEU-n / mean length of samples drawn with ``rng`` (see the module docstring).

        With several ``ranks`` each scores its share of the test set and samples its share of
        ``eval.bleu_samples`` (with its own ``rng``); rank 0 gathers the samples and scores BLEU and Self-BLEU,
        so only rank 0's result has them.
        """
        ranks = ranks or Ranks()
        e = self.eval_cfg
        through = PAD if self.pad_ending else None
        test = self.test[:e.test_rows] if e.test_rows else self.test  # [N_test, T]
        t_sum, t_count = ranks.sums(*sequence_nll_sum(generator, ranks.shard(test), e.batch_size, through))
        result = {"nll_test": t_sum / max(t_count, 1)}
        if e.nll_gen:
            g_sum, g_count = ranks.sums(*sequence_nll_sum(generator, ranks.shard(self.train), e.batch_size))
            result["nll_gen"] = g_sum / max(g_count, 1)
        if e.bleu_samples:
            was_training = generator.training
            generator.eval()
            seqs = generator.sample(ranks.count(e.bleu_samples), generator=rng, batch_size=e.batch_size)  # [S_r, T]
            generator.train(was_training)
            lengths = row_lengths(seqs)  # [S_r] tokens before the first EOS (eos) or PAD (pad)
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
