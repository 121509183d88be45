"""seqgan-kit: adversarial text generation in PyTorch (SeqGAN and successors), with exact, fast metrics.

The Python API (:mod:`seqgan_kit.api`; imported on first use, so ``import seqgan_kit`` stays light):

- ``seqgan_kit.train(recipe, overrides=..., run_dir=...)`` trains like ``seqgan-kit train`` and returns a
  :class:`~seqgan_kit.api.Run`;
- ``seqgan_kit.load(run_dir)`` returns the :class:`~seqgan_kit.api.Run` of a run directory (``.sample()``,
  ``.nll()``, ``.fill()`` for MaskGAN runs, ``.metrics``, ``.summary()``);
- ``seqgan_kit.metrics``: ``bleu``, ``self_bleu``, ``corpus_bleu``, ``fed``, ``embsim``, ``novelty``,
  ``distinct_ngrams``, ``sequence_nll``, ``quality_diversity``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load", "metrics", "train"]


def load(run_dir: Any) -> Any:
    """The run directory ``run_dir`` as a :class:`seqgan_kit.api.Run` (see :func:`seqgan_kit.api.load`)."""
    from .api import load as load_run

    return load_run(run_dir)


def __getattr__(name: str) -> Any:
    # ``seqgan_kit.train`` is the training subpackage, made callable (seqgan_kit/train/__init__.py): calling it
    # is seqgan_kit.api.train. ``seqgan_kit.metrics`` is the metrics subpackage, which re-exports the functions.
    if name in ("train", "metrics", "api"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'seqgan_kit' has no attribute {name!r}")
