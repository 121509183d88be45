"""Metrics, one module per family: ``nll`` (NLL_oracle, NLL_test), ``bleu`` (BLEU-n, Self-BLEU-n),
``corpus_bleu`` (sacrebleu), ``embedding`` (FED, EmbSim, novelty), ``infill`` (MaskGAN's measures), ``sweep``
(quality-diversity curves).

The functions a notebook needs are re-exported here: ``seqgan_kit.metrics.bleu(hyps, refs, orders=[2, 3])``.
(``bleu`` and ``corpus_bleu`` are then the functions; their modules stay importable by their full names.)
"""

from .bleu import bleu, self_bleu
from .corpus_bleu import corpus_bleu
from .embedding import embsim, fed, novelty
from .infill import distinct_ngrams
from .nll import sequence_nll
from .sweep import quality_diversity

__all__ = ["bleu", "corpus_bleu", "distinct_ngrams", "embsim", "fed", "novelty", "quality_diversity",
           "self_bleu", "sequence_nll"]
