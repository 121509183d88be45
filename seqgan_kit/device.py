"""The machine: device selection (``auto`` means CUDA when present, else CPU; nothing in seqgan-kit hard-codes
CUDA) and its memory (sizes that cannot fit are refused before anything is allocated)."""

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


GB = 1e9


def memory_limit() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(parts: dict[str, int], what: str, hint: str) -> None:
    """UserError when ``parts`` (name -> bytes) add up to more than this machine's memory.

    ``what``: what needs them (``"the run"``, ``"checkpoint X"``); ``hint``: what to change."""
    limit = memory_limit()
    total = sum(parts.values())
    if limit is None or total <= limit:
        return
    shown = ", ".join(f"{name} {size / GB:.1f} GB" for name, size in parts.items() if size >= GB / 100)
    raise UserError(f"{what} needs about {total / GB:.1f} GB ({shown}), more than this machine's {limit / GB:.1f} GB "
                    f"of memory: {hint}")
