"""Getting a corpus's raw source files: a local copy or a URL (urllib), each checked against its SHA-256."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ...errors import UserError
from ...files import file_sha256
from .spec import URL_PREFIXES, Log, PinnedSource

DOWNLOAD_TIMEOUT_S = 60.0
"""Seconds a download may wait for the server (connecting, or between two received blocks)."""



def is_url(location: str) -> bool:
    """Is a ``--source`` value a URL (fetched with urllib) rather than a local path?"""
    return location.lower().startswith(URL_PREFIXES)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return getattr(reason, "strerror", None) or str(reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Stream ``url`` to ``dest`` (progress bar on a terminal); UserError saying to use ``--source`` on failure."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "seqgan-kit"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=None,
                      leave=False) as bar:
                while block := response.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UserError(f"cannot download {url}: {_failure_reason(exc)}; download the file by hand and pass its "
                        f"path with --source") from None


def fetch_source(pinned: PinnedSource, location: str, workdir: Path, log: Log) -> Path:
    """The local path of one source (``location``: a path or URL, downloaded into the new folder ``workdir``),
    its SHA-256 checked against the card."""
    if is_url(location):
        workdir.mkdir(parents=True)
        path = workdir / pinned.filename
        log(f"downloading {location}")
        download(location, path)
        shown = location
    else:
        path = Path(location).expanduser()
        if not path.is_file():
            raise UserError(f"source file not found: {path}")
        shown = str(path)
    actual = file_sha256(path)
    if actual != pinned.sha256:
        raise UserError(f"source {shown} is not the pinned {pinned.filename} (corrupted or truncated?): sha256 "
                        f"{actual}, expected {pinned.sha256}")
    return path


# --------------------------------------------------------------------------- checking and installing

