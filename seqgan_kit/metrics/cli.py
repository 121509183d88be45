"""`seqgan-kit eval bleu` and `seqgan-kit eval self-bleu` (placeholder: filled in by the metrics work)."""

import argparse


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    """Add the BLEU commands to the ``eval`` sub-command group."""
