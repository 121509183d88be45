"""Corpus-level BLEU through sacrebleu: the machine-translation number, with its reproducibility signature.

This is a different quantity from the text-GAN BLEU of :mod:`seqgan_kit.metrics.bleu`: n-gram matches are
pooled over the whole corpus (micro average, BLEU-4 unless ``max_order`` says otherwise, exponential
smoothing), and hypothesis ``i`` is matched against reference ``i`` only, so the two files must be aligned line
by line.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

Sentence = str | Sequence[Hashable]


@dataclass(frozen=True)
class CorpusBleu:
    """``score`` on sacrebleu's 0-100 scale; ``signature`` as sacrebleu prints it (e.g. ``nrefs:1|...``)."""

    score: float
    signature: str


def _as_text(sentence: Sentence) -> str:
    return sentence if isinstance(sentence, str) else " ".join(map(str, sentence))


def corpus_bleu(hypotheses: Sequence[Sentence], references: Sequence[Sentence],
                tokenize: str = "none", max_order: int = 4) -> CorpusBleu:
    """sacrebleu's corpus BLEU-``max_order`` (default BLEU-4) of ``hypotheses`` against the aligned
    ``references`` (one per hypothesis).

    A sentence is a string or a sequence of tokens (joined with single spaces). The default
    ``tokenize="none"`` keeps the caller's tokens as they are, so the n-grams are the ones the text-GAN BLEU
    counts; pass a sacrebleu tokenizer name (``"13a"``, ``"char"``, ``"zh"``, ...) for raw text.
    Raises ValueError when the two lists differ in length or are empty.
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"corpus BLEU pairs hypothesis i with reference i: got {len(hypotheses)} hypotheses "
                         f"and {len(references)} references")
    if not hypotheses:
        raise ValueError("no sentences to score")
    # force: with tokenize="none" the text is tokenized on purpose; don't warn that it looks undetokenized.
    metric = BLEU(tokenize=tokenize, force=tokenize == "none", max_ngram_order=max_order)
    result = metric.corpus_score(list(map(_as_text, hypotheses)), [list(map(_as_text, references))])
    return CorpusBleu(float(result.score), str(metric.get_signature()))
