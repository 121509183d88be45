"""``seqgan-kit train --nproc N``: the same run under ``torchrun --standalone --nproc-per-node N``.

The launcher is torch's own (``torch.distributed.run``); this module only builds its arguments, checks the
recipe before any process starts, and turns a failed rank into one line.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

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
        rank, failure = root_failure(exc.failures)
        if failure.exitcode == USER_ERROR:
            raise RanksReported() from None  # the rank printed its one line: nothing to add
        raise UserError(f"rank {rank} {describe_exit(failure.exitcode)}; {len(exc.failures)} of {nproc} ranks "
                        f"failed and the others were stopped; a run that wrote a checkpoint continues with "
                        f"--resume") from None
    return 0


USER_ERROR = 2
"""The exit code of a rank that printed a one-line error itself."""


class RanksReported(UserError):
    """A rank failed with its own one-line error, already printed: the launcher exits 2 and prints nothing."""

    def __init__(self) -> None:
        super().__init__("")


def root_failure(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure that caused the others: torchrun stops the surviving ranks with SIGTERM once one fails, so a
    rank that ended otherwise comes first (killed or crashed before one that printed its own error, which may
    only say that a peer died), then the earliest, then the lowest rank."""
    def key(item: tuple[int, Any]) -> tuple[bool, bool, float, int]:
        rank, failure = item  # a rank's own one-line error (exit 2) may only report that a peer died
        return failure.exitcode == -signal.SIGTERM, failure.exitcode == USER_ERROR, failure.timestamp, rank

    return min(failures.items(), key=key)


def describe_exit(code: int) -> str:
    """``"was killed by signal 9 (SIGKILL)"`` / ``"exited with code 1"``."""
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-code}{name}"
    return f"exited with code {code}"
