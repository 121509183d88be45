"""Files of token-id sequences (the synthetic task's format): one sequence per line, ids separated by spaces."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError


def read_token_file(path: str | Path, vocab_size: int | None = None, seq_len: int | None = None) -> torch.Tensor:
    """Read a token-id file into ``[N, T]`` int64.

    Every line must hold the same number of integer ids (``seq_len`` when given), each in
    ``[0, vocab_size)`` when ``vocab_size`` is given. Violations raise UserError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    rows: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            raise UserError(f"{path}:{lineno}: empty line (expected space-separated token ids)")
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not p.lstrip("-").isdigit())
            raise UserError(f"{path}:{lineno}: {bad!r} is not an integer token id") from None
        if seq_len is not None and len(ids) != seq_len:
            raise UserError(f"{path}:{lineno}: {len(ids)} tokens, expected {seq_len}")
        if rows and len(ids) != len(rows[0]):
            raise UserError(f"{path}:{lineno}: {len(ids)} tokens, but line 1 has {len(rows[0])}")
        if vocab_size is not None:
            out = [i for i in ids if not 0 <= i < vocab_size]
            if out:
                raise UserError(f"{path}:{lineno}: token id {out[0]} outside the vocabulary [0, {vocab_size})")
        rows.append(ids)
    if not rows:
        raise UserError(f"{path} is empty (expected one sequence of token ids per line)")
    return torch.tensor(rows, dtype=torch.long)
