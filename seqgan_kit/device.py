"""The machine: device and precision selection (device ``auto`` means CUDA when present, else CPU;
precision ``auto`` means bfloat16 where the device has fast bfloat16, else float32: :func:`choose_precision`;
nothing in seqgan-kit hard-codes CUDA) and its memory (sizes that cannot fit are refused before anything is
allocated)."""

from __future__ import annotations

import os

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


PRECISIONS = ("auto", "fp32", "bf16")
"""``runtime.precision`` values: ``auto`` resolves to ``bf16`` or ``fp32`` by :func:`choose_precision`."""

AUTO_PRECISION_ENV = "SEQGAN_KIT_AUTO_PRECISION"
"""Environment variable that pins what ``auto`` resolves to (``fp32`` or ``bf16``), whatever the hardware (the
test suite pins ``fp32`` so that its float32 expectations hold on an AMX CPU too). Explicit ``fp32``/``bf16``
in a recipe are never overridden."""

CPUINFO = "/proc/cpuinfo"


def cpu_flags(path: str = CPUINFO) -> frozenset[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty where the file is missing, e.g.
    not Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:  # no cpuinfo: no flags known, so no fast bf16 claimed
        return frozenset()
    return frozenset()


def choose_precision(requested: str, device: torch.device, *, flags: frozenset[str] | set[str] | None = None,
                     cuda_bf16: bool | None = None, env: dict[str, str] | None = None) -> tuple[str, str]:
    """What ``runtime.precision = requested`` means on ``device``: ``(precision, reason)``, precision ``fp32`` or
    ``bf16`` and a one-phrase reason (printed and recorded in ``run.json``).

    ``auto``: ``bf16`` where the device has fast bfloat16 -- CUDA with ``torch.cuda.is_bf16_supported()``, or a
    CPU whose flags include ``amx_bf16`` (AMX tiles, which oneDNN uses for bf16 GEMMs) -- and ``fp32`` elsewhere
    (on AVX2/AVX-512 without AMX, bf16 GEMMs are emulated and slower than float32: ``eval/results/precision.md``).
    ``flags``, ``cuda_bf16`` and ``env`` default to this machine's (``/proc/cpuinfo``, torch, ``os.environ``);
    tests pass them in.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r} (expected one of {', '.join(PRECISIONS)})")
    if requested != "auto":
        return requested, "set in the recipe"
    env = os.environ if env is None else env
    pinned = env.get(AUTO_PRECISION_ENV, "")
    if pinned:
        if pinned not in ("fp32", "bf16"):
            raise UserError(f"{AUTO_PRECISION_ENV}={pinned!r}: expected fp32 or bf16")
        return pinned, f"auto, pinned by {AUTO_PRECISION_ENV}={pinned}"
    if device.type == "cuda":
        if cuda_bf16 is None:
            cuda_bf16 = bool(torch.cuda.is_bf16_supported())
        return ("bf16", "auto: this CUDA device supports bfloat16") if cuda_bf16 else \
            ("fp32", "auto: this CUDA device has no bfloat16 support")
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        if "amx_bf16" in flags:
            return "bf16", "auto: the CPU has AMX bfloat16 tiles (amx_bf16)"
        return "fp32", "auto: the CPU has no AMX (no amx_bf16 flag), bfloat16 would be emulated and slower"
    return "fp32", f"auto: no fast bfloat16 known for device type {device.type!r}"
