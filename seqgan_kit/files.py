"""Files: the one atomic-write helper every module uses, strict UTF-8 line reading, and hashing.

Atomic means: the data go to a temporary file in the target's folder (named ``.NAME.tmpPID.HOST``), are flushed
to disk, and the temporary file is renamed over the target. A reader sees the old file or the new one, never
half of one. A failed write removes its temporary file and leaves the target as it was; the ``OSError``
(read-only folder, full disk, ...) becomes one :class:`~seqgan_kit.errors.UserError` line.

A writer killed outright (``kill -9``, a power cut) cannot remove its temporary file. The next write of the
same target removes every ``.NAME.tmpPID*`` whose process is gone (:func:`remove_stale_temp_files`), so a
killed writer's file never outlives the next one; run directories and data roots clean all of theirs when a
command starts writing there. ``HOST`` tags the machine (a hash of its host name): on a folder several machines
share, a process id is only looked up on the machine that wrote the file, so a live writer elsewhere is never
taken for a dead one here (a name without the tag, as seqgan-kit 0.1 wrote them, counts as this machine's).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError

TMP_MARK = ".tmp"
"""Temporary files are ``.<name>.tmp<pid>.<host>[suffix]`` beside their target."""
HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
"""This machine in temporary names: 8 hex digits of its host name's hash."""


def temp_name(name: str) -> str:
    """The temporary name this process uses while writing (or building) ``name``: ``.<name>.tmp<pid>.<host>``."""
    return f".{name}{TMP_MARK}{os.getpid()}.{HOST_TAG}"


def temp_path(target: Path, suffix: str = "") -> Path:
    """The temporary file this process uses while writing ``target``."""
    return target.with_name(temp_name(target.name) + suffix)


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
        remove_stale_temp_files(target.parent, target.name)
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


def temp_owner(name: str) -> tuple[int, str] | None:
    """``(pid, host tag)`` of the writer in a temporary name ``.<target>.tmp<pid>[.<host>][suffix]`` (the tag
    is this machine's when the name has none); None when it is not a temporary name."""
    if not name.startswith(".") or TMP_MARK not in name:
        return None
    tail = name.rsplit(TMP_MARK, 1)[1]
    digits = tail[:len(tail) - len(tail.lstrip("0123456789"))]
    if not digits:
        return None
    rest = tail[len(digits):]
    tagged = len(rest) >= 9 and rest[0] == "." and all(ch in "0123456789abcdef" for ch in rest[1:9])
    return int(digits), rest[1:9] if tagged else HOST_TAG


def remove_stale_temp_files(folder: str | Path, target: str | None = None) -> list[Path]:
    """Delete the temporary files (and build folders) in ``folder`` whose writing process is no longer alive;
    with ``target``, only those of that file name (``.<target>.tmpPID*``). Returns what was removed."""
    removed: list[Path] = []
    folder = Path(folder)
    pattern = f".{glob_escape(target)}{TMP_MARK}*" if target is not None else f".*{TMP_MARK}*"
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return removed
    for path in candidates:
        owner = temp_owner(path.name)
        if owner is None or owner[1] != HOST_TAG or pid_alive(owner[0]):
            continue  # not ours to judge: another machine's writer, or a live one
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # best effort: a read-only folder, or another cleaner was first
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters ``*?[`` taken literally."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


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
