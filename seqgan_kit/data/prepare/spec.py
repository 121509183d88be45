"""The ``[prepare]`` table of a corpus card: pinned sources, cleaning method, seeded split, expected outputs."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..data_config import find_card, read_card

Log = Callable[[str], Any]
"""Where progress messages go (``print`` by default)."""

URL_PREFIXES = ("http://", "https://", "file://")
"""A ``--source`` value starting with one of these is fetched with ``urllib``; anything else is a local path."""
SUPPORTED_METHODS = ("verbatim", "quatrain5", "obama")
UNSUPPORTED_METHODS = {
    "quatrain7": "it is built from ~313 JSON files of chinese-poetry/chinese-poetry, which `data prepare` "
                 "cannot fetch yet",
}
"""Methods a card may name that this version cannot run, with the reason given to the user."""



# --------------------------------------------------------------------------- the [prepare] table


@dataclass(frozen=True)
class PinnedSource:
    """One raw source file of a corpus, pinned by URL (at a fixed commit) and SHA-256."""

    url: str
    sha256: str
    output: str = ""
    """``verbatim``: the output file this source becomes. Cleaning methods: empty (it feeds every output)."""

    @property
    def filename(self) -> str:
        """The last component of the URL's path (``shi.txt``)."""
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)).name or "source"


@dataclass(frozen=True)
class ExpectedFile:
    """What an output file must be: its SHA-256, line count and (optionally) size."""

    sha256: str
    lines: int
    bytes: int | None = None


@dataclass(frozen=True)
class PrepareSpec:
    """A card's ``[prepare]`` table, validated."""

    name: str
    card_path: Path
    method: str
    sources: tuple[PinnedSource, ...]
    outputs: dict[str, ExpectedFile]
    seed: int = 1609
    heldout: int = 0
    test: int | None = None
    test_fraction: float | None = None
    train: int | None = None
    train_file: str = "train.txt"
    test_file: str = "test.txt"

    @property
    def supported(self) -> bool:
        """Can this version of seqgan-kit build the corpus?"""
        return self.method in SUPPORTED_METHODS


_HEX64 = re.compile(r"[0-9a-f]{64}")
_PREPARE_KEYS = {"method", "seed", "heldout", "test", "test_fraction", "train", "sources", "outputs", "note"}
_SOURCE_KEYS = {"url", "sha256", "output", "git_blob"}
_OUTPUT_KEYS = {"sha256", "lines", "bytes"}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load_spec(card: str | Path) -> PrepareSpec:
    """The validated ``[prepare]`` table of a card (a packaged card's name or a path); UserError if invalid."""
    path = find_card(str(card))
    table = read_card(path)
    name = table.get("name")
    where = f"corpus card {path}"
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise UserError(f"{where}: needs a plain 'name' (the corpus folder name), got {name!r}")
    prep = table.get("prepare")
    if not isinstance(prep, dict):
        raise UserError(f"{where} has no [prepare] table, so `data prepare` cannot build {name}")
    where = f"{where} [prepare]"

    unknown = sorted(set(prep) - _PREPARE_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(_PREPARE_KEYS))})")
    method = prep.get("method")
    if method not in SUPPORTED_METHODS and method not in UNSUPPORTED_METHODS:
        known = ", ".join((*SUPPORTED_METHODS, *UNSUPPORTED_METHODS))
        raise UserError(f"{where}: method must be one of {known}, got {method!r}")
    for key in ("seed", "heldout", "test", "train"):
        if key in prep and not _is_count(prep[key]):
            raise UserError(f"{where}: {key} must be an integer >= 0, got {prep[key]!r}")
    fraction = prep.get("test_fraction")
    if fraction is not None and not (isinstance(fraction, float) and 0 < fraction < 1):
        raise UserError(f"{where}: test_fraction must be a number in (0, 1), got {fraction!r}")

    outputs: dict[str, ExpectedFile] = {}
    raw_outputs = prep.get("outputs")
    if not isinstance(raw_outputs, dict) or not raw_outputs:
        raise UserError(f"{where}: needs [prepare.outputs] with the expected sha256 and lines of each file")
    for filename, entry in raw_outputs.items():
        label = f"{where} outputs.{filename!r}"
        if Path(filename).name != filename or filename.startswith("."):
            raise UserError(f"{label}: an output must be a plain file name")
        if not isinstance(entry, dict) or set(entry) - _OUTPUT_KEYS:
            raise UserError(f"{label}: expected a table with sha256, lines and bytes")
        digest, lines, size = entry.get("sha256"), entry.get("lines"), entry.get("bytes")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise UserError(f"{label}: sha256 must be 64 lowercase hex digits, got {digest!r}")
        if not _is_count(lines) or (size is not None and not _is_count(size)):
            raise UserError(f"{label}: lines and bytes must be integers >= 0")
        outputs[filename] = ExpectedFile(digest, lines, size)

    sources: list[PinnedSource] = []
    raw_sources = prep.get("sources", [])
    if not isinstance(raw_sources, list):
        raise UserError(f"{where}: sources must be an array of tables ([[prepare.sources]])")
    for i, entry in enumerate(raw_sources, 1):
        label = f"{where} source {i}"
        if not isinstance(entry, dict) or set(entry) - _SOURCE_KEYS:
            raise UserError(f"{label}: expected a table with url, sha256 and (verbatim) output")
        url, digest, output = entry.get("url"), entry.get("sha256"), entry.get("output", "")
        if not isinstance(url, str) or not url.lower().startswith(URL_PREFIXES):
            raise UserError(f"{label}: url must be an http(s):// or file:// URL, got {url!r}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise UserError(f"{label}: sha256 must be 64 lowercase hex digits, got {digest!r}")
        if not isinstance(output, str) or (output and output not in outputs):
            raise UserError(f"{label}: output must name one of [prepare.outputs] ({', '.join(outputs)})")
        sources.append(PinnedSource(url, digest, output))

    spec = PrepareSpec(
        name=name, card_path=path, method=method, sources=tuple(sources), outputs=outputs,
        seed=prep.get("seed", 1609), heldout=prep.get("heldout", 0), test=prep.get("test"),
        test_fraction=fraction, train=prep.get("train"),
        train_file=table.get("train") or "train.txt", test_file=table.get("test") or "test.txt",
    )
    if spec.supported:
        _check_method_needs(spec, where)
    return spec


def _check_method_needs(spec: PrepareSpec, where: str) -> None:
    """The keys each supported method needs are present and consistent."""
    if not spec.sources:
        raise UserError(f"{where}: needs at least one [[prepare.sources]]")
    if spec.method == "verbatim":
        fed = [s.output for s in spec.sources]
        if "" in fed or len(set(fed)) != len(fed) or set(fed) != set(spec.outputs):
            raise UserError(f"{where}: verbatim needs one source per output file, each naming its output")
        return
    if len(spec.sources) != 1 or spec.sources[0].output:
        raise UserError(f"{where}: method {spec.method!r} reads exactly one source (with no output key)")
    if (spec.test is None) == (spec.test_fraction is None):
        raise UserError(f"{where}: method {spec.method!r} needs either test (a count) or test_fraction")
    if set(spec.outputs) != {spec.train_file, spec.test_file}:
        raise UserError(f"{where}: outputs must be the card's train and test files "
                        f"({spec.train_file}, {spec.test_file})")


