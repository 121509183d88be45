"""The ``seqgan-kit`` command line (``main``): train, sample, eval and data sub-commands."""

from .main import main

__all__ = ["main"]
