"""``seqgan-kit train --nproc N``: the same run under ``torchrun --standalone --nproc-per-node N``.

The launcher is torch's own (``torch.distributed.run``); this module only builds its arguments, checks the
recipe before any process starts, and turns a failed rank into one line.
"""

from __future__ import annotations

import logging
import os

from ..errors import UserError


def launch(nproc: int, train_argv: list[str]) -> int:
    """Run ``seqgan-kit train TRAIN_ARGV...`` as ``nproc`` ranks on this machine; 0 when every rank succeeded.

    ``nproc`` must be >= 1; a rank that fails makes the others stop (torchrun), and this raises one UserError
    naming the first failed rank and its exit code.
    """
    if nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {nproc}")
    if "WORLD_SIZE" in os.environ:
        raise UserError("--nproc starts its own ranks: do not combine it with torchrun")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, set here so that it does not warn
    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--module", "seqgan_kit", "train", *train_argv])
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the ranks report their own errors
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = min(exc.failures.items())
        raise UserError(f"{len(exc.failures)} of {nproc} ranks failed (first: rank {rank}, exit code "
                        f"{failure.exitcode}); a run that wrote a checkpoint continues with --resume") from None
    return 0
