"""A diverged run: non-finite losses and updates stop training with one line, before they reach the weights."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from ..errors import UserError


def diverged(where: str, what: str = "loss") -> str:
    """The one-line message of a run whose numbers went non-finite."""
    return (f"training diverged: non-finite {what} at {where}; the last good checkpoint is kept; "
            f"lower the learning rate")


@contextlib.contextmanager
def sampling_stops_divergence(where: str) -> Iterator[None]:
    """Sampling from a generator whose weights went non-finite (the samplers' ValueError) is a diverged run:
    one line naming ``where``, not a traceback."""
    try:
        yield
    except ValueError as exc:
        if "non-finite" not in str(exc):
            raise
        raise UserError(diverged(where, "probabilities")) from None


def finite_loss(loss: torch.Tensor | float, where: str) -> float:
    """The loss as a float; UserError when it is NaN or infinite (call before ``backward``)."""
    value = float(loss)
    if not math.isfinite(value):
        raise UserError(diverged(where))
    return value


def optimizer_step(optimizer: torch.optim.Optimizer, where: str) -> None:
    """``optimizer.step()``; a learning rate so large the update overflows float32 is a diverged run."""
    try:
        optimizer.step()
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise UserError(diverged(where, "update (float32 overflow)")) from None


def clip_gradients(params, clip: float) -> None:
    """A global-norm clip of the gradients of ``params`` at ``clip`` (0: none)."""
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)


def backward_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, where: str, clip: float = 0.0,
                  params=None) -> None:
    """One update from ``loss``: gradients, :func:`clip_gradients` at ``clip`` over ``params`` (default: the
    optimizer's parameters), then :func:`optimizer_step`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:  # the default parameter list is only built when there is something to clip
        clip_gradients(params if params is not None else
                       [p for group in optimizer.param_groups for p in group["params"]], clip)
    optimizer_step(optimizer, where)
