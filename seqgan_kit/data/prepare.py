"""``seqgan-kit data prepare``: rebuild a card's corpus from its pinned sources, byte for byte.

A corpus card's ``[prepare]`` table names the raw source file(s) (URL at a pinned commit and SHA-256), the
cleaning method, the seeded split and the SHA-256 of every output file. :func:`prepare_corpus`

1. checks the target ``<root>/<name>/`` (already prepared with matching hashes: nothing to do; present but
   different: refused unless ``force``);
2. gets each source (a local ``--source`` path, a ``--source`` URL, or else the card's URL) and checks its
   SHA-256 *before* any cleaning;
3. cleans, de-duplicates and splits the lines exactly as ``shared/corpora/reference_prepare.py`` does;
4. writes the files into ``<root>/.<name>.tmp<pid>/``, checks every output's SHA-256 against the card and
   only then renames the folder into place. Any failure removes the temporary folder: no partial corpus is
   ever left behind.

Cleaning methods (``[prepare] method``):

* ``verbatim``: each source is copied unchanged to the output file it feeds (``image_coco``, ``emnlp_news``).
* ``quatrain5``: Texygen's ``shi.txt``: well-formed five-character quatrains, exact duplicates (by their
  ideographs) and near-duplicates (at most a quarter of the character positions differ; the first poem of a
  group is kept) removed.
* ``obama``: one paragraph per source line: normalized punctuation, no boilerplate, only Obama's own turns,
  no stage directions or footnotes; exact duplicates (lowercase letters and digits) and near-duplicates (at
  least half of the shorter paragraph's word 5-grams shared; the longest paragraph of a group is kept)
  removed.
* ``quatrain7`` (``poetry_quatrain7``, built from ~313 JSON files of chinese-poetry): not supported yet;
  preparing it is a one-line error.

After the de-duplication the kept examples (in source order) are shuffled with
``random.Random(f"{seed}:{name}")``; the first ``heldout`` are withheld (written nowhere), the next ``test``
(or ``round((n - heldout) * test_fraction)``) go to the test file, and the rest (at most ``train``) to the
train file, one example per line with a final newline.

Nothing is downloaded unless this command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import random
import re
import shutil
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import TMP_MARK, file_sha256, pid_alive, read_lines
from .cards import CARDS_DIR, DATA_ENV, data_root, find_card, read_card

Log = Callable[[str], Any]
"""Where progress messages go (``print`` by default)."""

DOWNLOAD_TIMEOUT_S = 60.0
"""Seconds a download may wait for the server (connecting, or between two received blocks)."""
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


# --------------------------------------------------------------------------- shared cleaning helpers

HAN = "[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef]"
"""One CJK unified ideograph: the basic block and extensions A to F."""
_HAN_CHAR = re.compile(HAN)


def ideographs(text: str) -> str:
    """The CJK ideographs of ``text`` in order (a poem's identity: punctuation and spaces ignored)."""
    return "".join(_HAN_CHAR.findall(text))


def alnum_key(text: str) -> str:
    """A paragraph's identity: its lowercased ASCII letters and digits, nothing else."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def first_of_each_key(items: Iterable[str], key: Callable[[str], str]) -> list[str]:
    """``items`` without exact duplicates under ``key``; the first occurrence stays, order is kept."""
    seen: set[str] = set()
    kept = []
    for item in items:
        identity = key(item)
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    return kept


class DisjointSets:
    """Union-find over ``0..n-1`` (path halving); only the resulting partition is used."""

    def __init__(self, n: int) -> None:
        self._up = list(range(n))

    def root(self, i: int) -> int:
        """The representative of ``i``'s set."""
        up = self._up
        while up[i] != i:
            up[i] = up[up[i]]
            i = up[i]
        return i

    def join(self, i: int, j: int) -> None:
        """Merge the sets of ``i`` and ``j``."""
        a, b = self.root(i), self.root(j)
        if a != b:
            self._up[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """The sets, each as a sorted list of members."""
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self._up)):
            members[self.root(i)].append(i)
        return list(members.values())


def one_per_group(items: Sequence[str], sets: DisjointSets, weight: Callable[[str], int] | None = None) -> list[str]:
    """One item of every group, in source order: the group's first item, or with ``weight`` the heaviest
    (the earliest of equally heavy ones)."""
    chosen = []
    for members in sets.groups():
        if weight is None:
            chosen.append(members[0])
        else:
            chosen.append(max(members, key=lambda i: (weight(items[i]), -i)))
    return [items[i] for i in sorted(chosen)]


def poem_variants(poems: Sequence[str]) -> DisjointSets:
    """Group poems whose ideograph strings differ in at most a quarter of their positions (5 of 20).

    The groups are the connected components of the "at most d mismatches" graph. Candidate pairs come from
    the pigeonhole principle: split the positions into d + 1 blocks; two strings with at most d mismatches
    agree on at least one whole block, so only strings sharing some block's content are compared.
    """
    keys = [ideographs(p) for p in poems]
    sets = DisjointSets(len(keys))
    if not keys:
        return sets
    width = len(keys[0])
    limit = width // 4
    cuts = [width * b // (limit + 1) for b in range(limit + 2)]
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        same_block: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            same_block[key[lo:hi]].append(i)
        for bucket in same_block.values():
            for pos, i in enumerate(bucket):
                for j in bucket[pos + 1:]:
                    if sets.root(i) != sets.root(j) and _within_mismatches(keys[i], keys[j], limit):
                        sets.join(i, j)
    return sets


def _within_mismatches(a: str, b: str, limit: int) -> bool:
    """Do equal-length strings ``a`` and ``b`` differ in at most ``limit`` positions?"""
    if len(a) != len(b):
        return False
    misses = 0
    for x, y in zip(a, b, strict=True):
        if x != y:
            misses += 1
            if misses > limit:
                return False
    return True


_NOT_WORD = re.compile(r"[^a-z0-9']+")


def word_5grams(text: str) -> set[tuple[str, ...]]:
    """The set of word 5-grams of ``text`` (words: lowercase runs of letters, digits and apostrophes)."""
    words = _NOT_WORD.sub(" ", text.lower()).split()
    return set(zip(*(words[k:] for k in range(5)), strict=False))


def paragraph_overlaps(paragraphs: Sequence[str]) -> DisjointSets:
    """Group paragraphs that share at least half of the word 5-grams of the one with fewer.

    Paragraphs with fewer than 3 distinct 5-grams are never grouped (exact de-duplication handles them).
    """
    grams = [word_5grams(p) for p in paragraphs]
    sets = DisjointSets(len(paragraphs))
    seen_in: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, mine in enumerate(grams):
        if len(mine) < 3:
            continue
        shared = Counter(j for gram in mine for j in seen_in.get(gram, ()))
        for j, count in shared.items():
            if 2 * count >= min(len(mine), len(grams[j])):
                sets.join(i, j)
        for gram in mine:
            seen_in[gram].append(i)
    return sets


def seeded_split(items: Sequence[str], spec: PrepareSpec) -> tuple[list[str], list[str], int]:
    """Shuffle with ``random.Random(f"{seed}:{name}")`` and cut held-out, then test, then train.

    Returns ``(train, test, withheld_count)``; the held-out examples are not kept.
    """
    order = list(items)
    random.Random(f"{spec.seed}:{spec.name}").shuffle(order)
    n_test = spec.test if spec.test is not None else round((len(order) - spec.heldout) * spec.test_fraction)
    if len(order) < spec.heldout + n_test:
        raise UserError(f"{spec.name}: only {len(order)} examples after cleaning, fewer than "
                        f"{spec.heldout} held out + {n_test} test")
    test = order[spec.heldout:spec.heldout + n_test]
    train = order[spec.heldout + n_test:]
    if spec.train is not None:
        if len(train) < spec.train:
            raise UserError(f"{spec.name}: only {len(train)} examples left for train, the card wants {spec.train}")
        train = train[:spec.train]
    return train, test, min(spec.heldout, len(order))


def lines_bytes(lines: Iterable[str]) -> bytes:
    """UTF-8 text with one example per line, each ending in ``\\n``."""
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def _split_outputs(examples: list[str], spec: PrepareSpec, log: Log) -> dict[str, bytes]:
    train, test, withheld = seeded_split(examples, spec)
    log(f"{spec.name}: {len(train):,} train / {len(test):,} test examples ({withheld:,} withheld)")
    return {spec.train_file: lines_bytes(train), spec.test_file: lines_bytes(test)}


# --------------------------------------------------------------------------- methods

_QUATRAIN5_VERSE = f"(?:{HAN} ){{5}}"
_QUATRAIN5 = re.compile(f"{_QUATRAIN5_VERSE}， {_QUATRAIN5_VERSE}。 {_QUATRAIN5_VERSE}， {_QUATRAIN5_VERSE}。")
"""``C C C C C ， C C C C C 。 C C C C C ， C C C C C 。`` with C an ideograph (24 tokens)."""


def build_quatrain5(spec: PrepareSpec, sources: Sequence[Path], log: Log) -> dict[str, bytes]:
    """Texygen's ``shi.txt``: well-formed quatrains, no exact or near duplicates, seeded split."""
    lines = [line.strip() for line in read_lines(sources[0])]
    lines = [line for line in lines if line]
    well_formed = [line for line in lines if _QUATRAIN5.fullmatch(line)]
    unique = first_of_each_key(well_formed, ideographs)
    distinct = one_per_group(unique, poem_variants(unique))
    log(f"{spec.name}: {len(lines):,} poems read, {len(well_formed):,} well-formed, {len(unique):,} unique, "
        f"{len(distinct):,} after removing variant readings")
    return _split_outputs(distinct, spec, log)


_SOFT_HYPHEN_RUN = re.compile("\u00ad{2,}")
_TYPOGRAPHY = str.maketrans({
    "\u00ad": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2014": "--", "\u2013": "-", "\u2026": "...", "\u00a0": " ",
})
"""Soft hyphen, curly quotes, dashes, ellipsis and no-break space to ASCII (after soft-hyphen runs)."""
_COPYRIGHT_NOTICES = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    r"Copyright Status:\s*Restricted,\s*seek permission\.?\s*©\s*\d{4}\.?",
    r"Property of\s*©\s*Copyright\s*\d{4}\.?\s*All rights reserved\.?",
    r"©\s*(?:Copyright\s*)?\d{4}\.?\s*All rights reserved\.?(?:\s+\d+\b)?",
))
"""Boilerplate removed in this order (the second must run before the more general third)."""
OBAMA_LABELS = frozenset({"President Obama", "PRESIDENT OBAMA", "PresidentObama"})
OTHER_SPEAKER_LABELS = frozenset({
    "Question", "Q", "Audience Member", "Audience Comment", "Statement",
    "Mr. Lalampaa", "Lalampaa", "Director Botticelli", "Secretary Burwell",
})
"""Speaker labels of the press-conference and town-hall transcripts in the source."""
_SPEAKER = re.compile(
    r"(?:^|(?<=\s))("
    + "|".join(re.escape(label) for label in sorted(OBAMA_LABELS | OTHER_SPEAKER_LABELS, key=lambda s: (-len(s), s)))
    + r"):(?=\s|$)")
_Q_PREFIX = re.compile(r"Q(?:\s|&A\b)")
_STAGE_PARENS = ("Laughter", "Applause", "Cheers", "Booing", "Inaudible", "Truncated", "retrieved")
_STAGE_BRACKETS = ("sic", "ph", "phonetic", "inaudible", "inaudible.", "Inaudible", "Inaudible.", "tape rolls",
                   "via Google Books")
_STAGE_DIRECTION = re.compile(
    r"\((?:" + "|".join(_STAGE_PARENS) + r")[^)]*\)"
    r"|\(I agree\. Absolutely\)"
    r"|\[(?:" + "|".join(re.escape(note) for note in _STAGE_BRACKETS) + r")\]")
_BRACKETED_WORD = re.compile(r"\[([A-Za-z'\"]{1,20})\]")
_FOOTNOTE = re.compile(r"\d{1,2} [A-Z]")
_RUN_TOGETHER = re.compile(r"[A-Za-z]{20,}")
_SPACES = re.compile(r"\s+")


def obama_turns(line: str) -> str:
    """What Obama says in one transcript line: unlabeled text at its start and text after an Obama label;
    text after a reporter, audience or other-speaker label is dropped."""
    text = line.strip()
    if _Q_PREFIX.match(text):  # "Q Thank you, Mr. President" / "Q&A": a reporter's question
        text = "Question: " + text[1:].lstrip()
    kept = []
    speaker: str | None = None
    start = 0
    for label in _SPEAKER.finditer(text):
        _keep_turn(kept, speaker, text[start:label.start()])
        speaker, start = label.group(1), label.end()
    _keep_turn(kept, speaker, text[start:])
    return " ".join(kept)


def _keep_turn(kept: list[str], speaker: str | None, said: str) -> None:
    if speaker in OBAMA_LABELS or (speaker is None and said.strip()):
        kept.append(said)


def clean_paragraph(line: str) -> str:
    """One source line of the Obama speeches, normalized (NFC, ASCII punctuation), without boilerplate,
    other speakers or stage directions, whitespace collapsed."""
    text = unicodedata.normalize("NFC", line)
    text = _SOFT_HYPHEN_RUN.sub("--", text).translate(_TYPOGRAPHY)
    for notice in _COPYRIGHT_NOTICES:
        text = notice.sub(" ", text)
    text = obama_turns(text)
    text = _STAGE_DIRECTION.sub(" ", text)
    text = _BRACKETED_WORD.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _paragraph_problem(text: str) -> str:
    """Why a cleaned paragraph is dropped, or ``""`` to keep it."""
    if len(text.split()) < 3 or not re.search("[A-Za-z]", text):
        return "fewer than 3 words or no letters"
    if _FOOTNOTE.match(text):
        return "footnotes"
    if _RUN_TOGETHER.search(text):
        return "PDF run-together words"
    return ""


def build_obama(spec: PrepareSpec, sources: Sequence[Path], log: Log) -> dict[str, bytes]:
    """Obama speech paragraphs: cleaned, filtered, no exact or near duplicates, seeded split."""
    raw = [line for line in read_lines(sources[0]) if line.strip()]
    dropped: Counter[str] = Counter()
    kept = []
    for line in raw:
        text = clean_paragraph(line)
        problem = _paragraph_problem(text)
        if problem:
            dropped[problem] += 1
        else:
            kept.append(text)
    unique = first_of_each_key(kept, alnum_key)
    distinct = one_per_group(unique, paragraph_overlaps(unique), weight=lambda p: len(p.split()))
    drops = ", ".join(f"{n:,} {why}" for why, n in dropped.items())
    log(f"{spec.name}: {len(raw):,} paragraphs read ({drops} dropped), {len(kept):,} kept, {len(unique):,} "
        f"unique, {len(distinct):,} after removing near-duplicates")
    return _split_outputs(distinct, spec, log)


def build_verbatim(spec: PrepareSpec, sources: Sequence[Path], log: Log) -> dict[str, bytes]:
    """Each source copied unchanged to the output file it feeds."""
    return {pinned.output: path.read_bytes() for pinned, path in zip(spec.sources, sources, strict=True)}


Builder = Callable[[PrepareSpec, Sequence[Path], Log], dict[str, bytes]]
BUILDERS: dict[str, Builder] = {"verbatim": build_verbatim, "quatrain5": build_quatrain5, "obama": build_obama}


# --------------------------------------------------------------------------- getting the sources


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


def count_lines(data: bytes) -> int:
    """Lines in a text file's bytes; a last line without a final newline still counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def output_problem(path: Path, expected: ExpectedFile) -> str:
    """Why the file at ``path`` is not the one the card expects, or ``""`` when it is."""
    if not path.is_file():
        return f"{path.name} is missing"
    actual = file_sha256(path)
    if actual != expected.sha256:
        return f"{path.name} has sha256 {actual}, the card expects {expected.sha256}"
    return ""


def _built_problem(name: str, data: bytes, expected: ExpectedFile) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.sha256:
        return (f"built {name} has sha256 {actual} ({count_lines(data):,} lines), the card expects "
                f"{expected.sha256} ({expected.lines:,} lines)")
    if count_lines(data) != expected.lines or (expected.bytes is not None and len(data) != expected.bytes):
        return f"built {name} matches the card's sha256 but not its lines/bytes: the card is inconsistent"
    return ""


def corpus_problem(folder: Path, spec: PrepareSpec) -> str:
    """Why ``folder`` does not hold the card's corpus, or ``""`` when every output matches."""
    if not folder.is_dir():
        return f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist"
    for filename, expected in spec.outputs.items():
        problem = output_problem(folder / filename, expected)
        if problem:
            return problem
    return ""


def build_folder(root: Path, name: str) -> Path:
    """The temporary folder this process builds corpus ``name`` in: ``<root>/.<name>.tmp<pid>``."""
    return root / f".{name}{TMP_MARK}{os.getpid()}"


def _remove_stale_builds(root: Path, name: str) -> None:
    """Delete build folders of ``name`` left by processes that no longer run."""
    prefix = f".{name}{TMP_MARK}"
    for path in root.glob(f"{prefix}*"):
        pid = path.name[len(prefix):]
        if path.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _install(built: Path, target: Path, outputs: Iterable[str]) -> None:
    """Move the verified files into ``target``: the whole folder by one rename when ``target`` is new; file by
    file (each an atomic replace; other files in the folder are kept) when rebuilding with ``force``."""
    if not target.exists():
        os.rename(built, target)
        return
    for filename in outputs:
        os.replace(built / filename, target / filename)


def _source_locations(spec: PrepareSpec, given: Sequence[str] | None) -> list[str]:
    if not given:
        return [pinned.url for pinned in spec.sources]
    if len(given) != len(spec.sources):
        order = ", ".join(pinned.filename for pinned in spec.sources)
        raise UserError(f"{spec.name} has {len(spec.sources)} source file(s), give one --source for each in this "
                        f"order: {order} (got {len(given)})")
    return list(given)


def prepare_corpus(card: str, sources: list[str] | None = None, root: str | Path | None = None,
                   force: bool = False, log: Log = print) -> Path:
    """Build corpus ``card`` (a packaged card name or a card path) in ``<root>/<name>/`` and return that folder.

    ``sources``: one local path or URL per card source, in card order (default: the card's URLs).
    ``root``: the data root (default :func:`~seqgan_kit.data.cards.data_root`: ``$SEQGAN_KIT_DATA`` or
    ``./data``). A folder that already matches the card is left alone; one that differs is rebuilt only with
    ``force``. Every problem (bad card, download failure, source or output hash mismatch) is a one-line
    UserError, and no partial corpus or temporary folder is left behind.
    """
    spec = load_spec(card)
    root_dir = Path(root).expanduser() if root else data_root()
    target = root_dir / spec.name
    if target.exists():
        problem = corpus_problem(target, spec)
        if not problem:
            log(f"{spec.name} is already prepared in {target} (every file matches the card); nothing to do")
            return target
        if not force:
            raise UserError(f"{target} exists but {problem}; pass --force to rebuild it")
        if not target.is_dir():
            raise UserError(f"{target} exists and is not a folder; move it away first")
    if not spec.supported:
        raise UserError(f"{spec.name} cannot be prepared by this version of seqgan-kit: "
                        f"{UNSUPPORTED_METHODS[spec.method]}; put its {spec.train_file}/{spec.test_file} in "
                        f"{target}/ yourself (they are checked against the card) or point data.dir at them")
    locations = _source_locations(spec, sources)

    work = build_folder(root_dir, spec.name)
    try:
        root_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(root_dir, spec.name)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        downloads = work / ".sources"
        paths = [fetch_source(pinned, location, downloads / str(i), log)
                 for i, (pinned, location) in enumerate(zip(spec.sources, locations, strict=True))]
        log(f"{spec.name}: source sha256 verified; building ({spec.method})")
        built = BUILDERS[spec.method](spec, paths, log)
        shutil.rmtree(downloads, ignore_errors=True)
        if set(built) != set(spec.outputs):
            raise UserError(f"{spec.name}: built {sorted(built)} but the card lists {sorted(spec.outputs)}")
        for filename, data in built.items():
            problem = _built_problem(filename, data, spec.outputs[filename])
            if problem:
                raise UserError(f"{spec.name}: {problem}; nothing was written")
            (work / filename).write_bytes(data)
        for filename, expected in spec.outputs.items():  # what reached the disk, read back
            problem = output_problem(work / filename, expected)
            if problem:
                raise UserError(f"{spec.name}: after writing, {problem}; nothing was installed")
        _install(work, target, spec.outputs)
    except OSError as exc:
        raise UserError(f"cannot prepare {spec.name} in {root_dir}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
    sizes = ", ".join(f"{name} ({expected.lines:,} lines)" for name, expected in spec.outputs.items())
    log(f"{spec.name}: wrote {sizes} to {target}; every sha256 matches the card")
    return target


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class CardStatus:
    """One packaged card as ``data list`` shows it."""

    name: str
    folder: Path
    prepared: str
    """``yes``, ``no``, or ``differs`` (the folder exists but a file does not match the card)."""
    preparable: str
    """``yes``, or ``no (reason)``."""


def list_cards(root: str | Path | None = None) -> list[CardStatus]:
    """Every packaged card, whether it is prepared under ``root`` and whether ``data prepare`` can build it."""
    root_dir = Path(root).expanduser() if root else data_root()
    rows = []
    for path in sorted(CARDS_DIR.glob("*.toml")):
        try:
            spec = load_spec(path)
        except UserError as exc:
            rows.append(CardStatus(path.stem, root_dir / path.stem, "?", f"no ({exc})"))
            continue
        folder = root_dir / spec.name
        if not folder.exists():
            prepared = "no"
        else:
            prepared = "differs" if corpus_problem(folder, spec) else "yes"
        preparable = "yes" if spec.supported else f"no ({spec.method}: not supported yet)"
        rows.append(CardStatus(spec.name, folder, prepared, preparable))
    return rows


# --------------------------------------------------------------------------- command line


def _cmd_prepare(args: argparse.Namespace) -> int:
    prepare_corpus(args.corpus, sources=args.source, root=args.root, force=args.force)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list_cards(args.root)
    root_dir = Path(args.root).expanduser() if args.root else data_root()
    print(f"data root: {root_dir.resolve()}")
    width = max(len(row.name) for row in rows) if rows else 4
    print(f"{'card':<{width}}  {'prepared':<8}  can prepare")
    for row in rows:
        print(f"{row.name:<{width}}  {row.prepared:<8}  {row.preparable}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Add the ``data`` command (``data prepare``, ``data list``) to the CLI's sub-command parsers."""
    data = subparsers.add_parser("data", help="corpora: list the packaged cards, prepare one from its pinned sources")
    actions = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    root_help = f"data root (default ${DATA_ENV}, else ./data); the corpus goes to ROOT/<name>/"

    p = actions.add_parser(
        "prepare", help="download, clean, split and verify a corpus into the data root",
        description="Download the pinned source file(s) named on a corpus card (or read local copies given with "
                    "--source), clean, de-duplicate and split them (seeded), check every output's SHA-256 "
                    "against the card and write ROOT/<name>/, where recipes naming the card find it.")
    p.add_argument("corpus", metavar="CORPUS", help="a packaged card name (see `data list`) or a card .toml path")
    p.add_argument("--source", action="append", metavar="PATH_OR_URL",
                   help="a local copy or URL of a source file, instead of the card's URL; repeat once per card "
                        "source, in card order")
    p.add_argument("--root", help=root_help)
    p.add_argument("--force", action="store_true", help="rebuild a corpus folder whose files differ from the card")
    p.set_defaults(func=_cmd_prepare)

    p = actions.add_parser("list", help="the packaged corpus cards, and which are prepared under the data root")
    p.add_argument("--root", help=root_help)
    p.set_defaults(func=_cmd_list)
