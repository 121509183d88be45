"""Files: the one atomic-write helper every module uses, strict UTF-8 line reading, and hashing.

Atomic means: the data go to a temporary file in the target's folder (named ``.NAME.tmpPID``), are flushed
to disk, and the temporary file is renamed over the target. A reader sees the old file or the new one, never
half of one. A failed write removes its temporary file and leaves the target as it was; the ``OSError``
(read-only folder, full disk, ...) becomes one :class:`~seqgan_kit.errors.UserError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError

TMP_MARK = ".tmp"
"""Temporary files are ``.<name>.tmp<pid>[suffix]`` beside their target."""


def temp_path(target: Path, suffix: str = "") -> Path:
    """The temporary file this process uses while writing ``target``."""
    return target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}{suffix}")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "", make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; on success it replaces ``path`` atomically.

    ``suffix`` keeps a file extension on the temporary name for writers that look at it (matplotlib);
    ``make_parents`` creates missing folders first (otherwise a missing folder is an error).
    Any error removes the temporary file; an ``OSError`` is re-raised as a one-line UserError.
    """
    target = Path(path)
    tmp = temp_path(target, suffix)
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):  # best effort: the folder may be read-only or gone
            tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str, make_parents: bool = False) -> None:
    """Write ``data`` (str is UTF-8 encoded) to ``path`` atomically (see :func:`atomic_path`)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, make_parents=make_parents) as tmp:
        tmp.write_bytes(payload)


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete ``.*.tmpPID*`` files in ``folder`` whose process is no longer alive; return what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".*{TMP_MARK}*"):
        pid_text = path.name.rsplit(TMP_MARK, 1)[1]
        digits = "".join(ch for ch in pid_text[:12] if ch.isdigit())
        if not digits or pid_alive(int(digits)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def pid_alive(pid: int) -> bool:
    """Is there a live process with this id (on this machine)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lines(path: str | Path, max_lines: int | None = None) -> list[str]:
    """The lines of a UTF-8 text file (at most the first ``max_lines``), without line terminators.

    Lines are split on ``\\n``, ``\\r\\n`` and ``\\r``; a final newline does not make an extra line, and a
    leading byte-order mark is dropped. Raises UserError for a missing file, bytes that are not UTF-8 (naming
    the byte offset and line) and an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{path} is not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                        f"line {line})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise UserError(f"{path} is empty (expected one sentence per line)")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    if max_lines is not None:
        lines = lines[:max_lines]
    return lines
