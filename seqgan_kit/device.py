"""Device selection: ``auto`` means CUDA when present, else CPU. Nothing in seqgan-kit hard-codes CUDA."""

from __future__ import annotations

import torch

from .errors import UserError


def resolve_device(name: str) -> torch.device:
    """``"auto" | "cpu" | "cuda" | "cuda:N"`` -> a usable torch.device (UserError if CUDA is asked for but absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: {name!r} requested but CUDA is not available on this machine")
    return device
