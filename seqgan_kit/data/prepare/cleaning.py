"""Cleaning, de-duplication and the seeded split of each corpus (the rules of ``shared/corpora/README.md``)."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ...errors import UserError
from ...files import read_lines
from .spec import Log, PrepareSpec

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
