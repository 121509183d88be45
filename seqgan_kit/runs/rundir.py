"""A run directory: everything one training run writes.

::

    RUN_DIR/
      config.toml             the resolved configuration (recipe + overrides)
      run.json                seed, versions, device, command line, start time
      metrics.jsonl           one JSON object per evaluation: phase, epoch/step, metric values
      curves.png              learning curves (re-drawn after every evaluation)
      checkpoint.safetensors  the latest full training state (resume point)
      generator_mle.safetensors  the generator after MLE pretraining (every adversarial variant starts here)
      generator_mle_best.safetensors  the MLE generator of the lowest NLL_test seen at an evaluation
      generator.safetensors   the generator after adversarial training
      tokenizer/              text runs: vocab.json (and spm.model), reused on resume and for sampling
      .lock                   held (``fcntl.flock``) by the one process writing the run; holds its pid

One writer per run directory: :meth:`RunDir.lock` takes an exclusive ``flock`` on ``.lock`` before anything is
written. The kernel drops the lock when its process dies, so a crashed run never blocks the next one; its pid
left in the file is reported as a stale lock and taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from typing import IO, Any

import tomli_w

from ..config import read_toml
from ..errors import UserError
from ..files import atomic_write, pid_alive, remove_stale_temp_files

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.toml"
INFO = "run.json"
DAMAGED = ".damaged"
"""Suffix of the file that keeps damaged lines of ``metrics.jsonl`` aside."""
LOCK = ".lock"


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_file: IO[str] | None = None

    # ------------------------------------------------------------------ creation and the writer lock
    def is_empty(self) -> bool:
        """Does the folder hold nothing but (possibly) the lock file?"""
        return not any(p.name != LOCK for p in self.path.iterdir())

    def make(self) -> bool:
        """Create the folder of a fresh run; return whether this call created it.

        ``mkdir`` itself decides a race between two fresh runs: an existing folder is accepted only while it is
        empty (and :meth:`lock` then decides who writes). UserError when it exists and is not empty, or cannot
        be made (read-only parent, a file in the way, ...).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a parent folder should be
            raise UserError(f"cannot create run directory {self.path}: {self.path.parent} is not a folder") from None
        except OSError as exc:
            raise UserError(f"cannot create run directory {self.path}: {exc.strerror or exc}") from None
        try:
            self.path.mkdir()
            return True
        except FileExistsError:
            if not self.path.is_dir():
                raise UserError(f"cannot create run directory {self.path}: a file of that name exists") from None
            if not self.is_empty():
                raise UserError(f"run directory {self.path} already exists and is not empty (use --resume to "
                                f"continue it)") from None
            return False
        except OSError as exc:
            raise UserError(f"cannot create run directory {self.path}: {exc.strerror or exc}") from None

    def lock(self) -> int | None:
        """Take the exclusive writer lock (``flock`` on ``RUN_DIR/.lock``, which then holds this pid).

        Returns the pid of a dead process whose lock was taken over (a crashed run), else None. UserError
        naming the holder's pid when another live process holds the lock.
        """
        path = self.path / LOCK
        try:
            fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the whole run)
        except OSError as exc:
            raise UserError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fh)
            fh.close()
            who = f"process {holder}" if holder else "another process"
            raise UserError(f"run directory {self.path} is in use by {who} (lock {path}); wait for it to "
                            f"finish or stop it first") from None
        previous = _read_pid(fh)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        except OSError as exc:
            fh.close()
            raise UserError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        self._lock_file = fh
        if previous and previous != os.getpid() and not pid_alive(previous):
            return previous
        return None

    def check_writable(self, fresh: bool) -> None:
        """UserError now (writing nothing) when a run could not start here: a fresh run's folder is not empty,
        or another live process holds the lock. For launchers, before they start any process."""
        if fresh and self.path.is_dir() and not self.is_empty():
            raise UserError(f"run directory {self.path} already exists and is not empty (use --resume to continue "
                            f"it)")
        path = self.path / LOCK
        if not path.is_file():
            return
        try:
            fh = open(path, encoding="utf-8")  # noqa: SIM115 (closed below; read-only: the probe writes nothing)
        except OSError as exc:
            raise UserError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(fh)
                who = f"process {holder}" if holder else "another process"
                raise UserError(f"run directory {self.path} is in use by {who} (lock {path}); wait for it to "
                                f"finish or stop it first") from None
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def unlock(self) -> None:
        """Release the writer lock (the lock file stays, emptied, so no pid in it looks stale)."""
        fh, self._lock_file = self._lock_file, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.flush()
        fh.close()  # closing the last descriptor releases the flock

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files of dead writers in the run directory and its ``tokenizer/`` folder."""
        return remove_stale_temp_files(self.path) + remove_stale_temp_files(self.path / "tokenizer")

    def remove(self) -> None:
        """Delete the whole run directory (a fresh run that failed before its first checkpoint)."""
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def create(self, config: dict[str, Any], info: dict[str, Any]) -> None:
        """Write ``config.toml`` (the resolved configuration), ``run.json`` (``info``) and an empty metrics log.

        The folder is made first when missing (callers that need the race-free creation use :meth:`make`).
        """
        if not self.path.is_dir():
            self.make()
        self.write_config(config)
        self.write_info(info)
        atomic_write(self.metrics_path, "")

    def write_config(self, config: dict[str, Any]) -> None:
        self.write_text(CONFIG, tomli_w.dumps(config))

    def write_info(self, info: dict[str, Any]) -> None:
        self.write_text(INFO, json.dumps(info, indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        """The resolved configuration this run was started with, as a dict; UserError if not a run dir."""
        path = self.path / CONFIG
        if not path.is_file():
            raise UserError(f"{self.path} is not a run directory (no {CONFIG})")
        return read_toml(path, "run configuration")

    @classmethod
    def holding(cls, path: str | Path) -> RunDir:
        """The run directory ``path`` is, or holds ``path`` (a checkpoint file inside one)."""
        path = Path(path)
        return cls(path if path.is_dir() else path.parent)

    def is_text_run(self) -> bool:
        """Is this a run directory (it has ``config.toml``) of a text run (``task = "text"``)?"""
        return (self.path / CONFIG).is_file() and self.read_config().get("task") == "text"

    def read_info(self) -> dict[str, Any]:
        """``run.json`` as a dict (empty when missing or damaged)."""
        try:
            info = json.loads((self.path / INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return info if isinstance(info, dict) else {}

    def write_text(self, name: str, text: str) -> None:
        """Write a file of the run directory atomically."""
        atomic_write(self.path / name, text)

    # ------------------------------------------------------------------ metrics log
    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to metrics.jsonl (flushed, so a kill loses at most this line)."""
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise UserError(f"cannot write {self.metrics_path}: {exc.strerror or exc}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The logged records; a torn last line (a crash in mid-write) and damaged lines are left out (see
        :meth:`truncate_metrics`, which keeps damaged lines aside)."""
        return self._scan_metrics()[0]

    def _scan_metrics(self) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        """``(records, damaged)``: the JSON-object lines of metrics.jsonl, and ``(line number, text)`` of every
        other non-blank line except a torn last one (no final newline: a crash in mid-write)."""
        if not self.metrics_path.exists():
            return [], []
        try:
            text = self.metrics_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UserError(f"cannot read {self.metrics_path}: {exc.strerror or exc}") from None
        lines = text.split("\n")
        torn = lines.pop()  # "" after a final newline; else a line cut in mid-write
        records, damaged = [], []
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif line.strip():
                damaged.append((number, line))
        if torn:
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                record = json.loads(torn)
                if isinstance(record, dict):  # a complete record whose newline was lost
                    records.append(record)
        return records, damaged

    def truncate_metrics(self, n_records: int) -> None:
        """Keep the first ``n_records`` records: on resume, drop what was logged after the checkpoint.

        A damaged line in the middle of the log is not dropped silently: it is appended to
        ``metrics.jsonl.damaged`` and a warning names its line number (a torn last line is just left out).
        """
        records, damaged = self._scan_metrics()
        if damaged:
            aside = self.path / f"{METRICS}{DAMAGED}"
            old = aside.read_text(encoding="utf-8", errors="replace") if aside.is_file() else ""
            atomic_write(aside, old + "".join(line + "\n" for _, line in damaged))
            numbers = ", ".join(str(n) for n, _ in damaged)
            print(f"seqgan-kit: warning: {self.metrics_path} line{'s' if len(damaged) > 1 else ''} {numbers} "
                  f"{'are' if len(damaged) > 1 else 'is'} not a JSON record: kept aside in {aside}",
                  file=sys.stderr, flush=True)
        self.write_text(METRICS, "".join(json.dumps(r) + "\n" for r in records[:n_records]))

    def plot(self) -> None:
        from .plots import plot_curves

        plot_curves(self.read_metrics(), self.path / "curves.png")


def _read_pid(fh: IO[str]) -> int | None:
    """The pid written in an open lock file (None when empty or unreadable)."""
    try:
        fh.seek(0)
        text = fh.read(32).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
