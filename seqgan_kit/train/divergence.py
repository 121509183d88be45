"""A diverged run: non-finite losses and updates stop training with one line, before they reach the weights."""

from __future__ import annotations

import math

import torch

from ..errors import UserError


def diverged(where: str, what: str = "loss") -> str:
    """The one-line message of a run whose numbers went non-finite."""
    return (f"training diverged: non-finite {what} at {where}; the last good checkpoint is kept; "
            f"lower the learning rate")


def finite_loss(loss: torch.Tensor, where: str) -> float:
    """``loss.item()``; UserError when it is NaN or infinite (call before ``backward``)."""
    value = loss.item()
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
