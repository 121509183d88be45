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
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...files import file_sha256, remove_stale_temp_files, temp_name
from ..data_config import CARDS_DIR, DATA_ENV, data_root, find_card, read_card
from .cleaning import BUILDERS, clean_paragraph, one_per_group, paragraph_overlaps, poem_variants
from .fetch import download, fetch_source, is_url
from .spec import UNSUPPORTED_METHODS, ExpectedFile, Log, PrepareSpec, load_spec

__all__ = ["add_cli", "clean_paragraph", "corpus_problem", "download", "fetch_source", "is_url", "list_cards",
           "load_spec", "one_per_group", "paragraph_overlaps", "poem_variants", "prepare_corpus"]


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
    """The temporary folder this process builds corpus ``name`` in: ``<root>/.<name>.tmp<pid>.<host>``."""
    return root / temp_name(name)


def _remove_stale_builds(root: Path, log: Log) -> None:
    """Delete build folders and temporary files in ``root`` left by processes that no longer run (of any
    corpus: a killed ``data prepare`` of one corpus is cleaned by the next prepare into the same root)."""
    for path in remove_stale_temp_files(root):
        log(f"removed {path}: a build left by a process that no longer runs")


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
    ``root``: the data root (default :func:`~seqgan_kit.data.data_config.data_root`: ``$SEQGAN_KIT_DATA`` or
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
        _remove_stale_builds(root_dir, log)
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


def show_card(card: str, root: str | Path | None = None) -> str:
    """The card file's text, then what it needs on disk: the data folder and split files (prepared or not) and
    the pinned source file(s) ``data prepare`` reads."""
    path = find_card(card)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    table = read_card(path)
    name = table.get("name") or path.stem
    folder = Path(table["dir"]) if table.get("dir") else (Path(root).expanduser() if root else data_root()) / name
    lines = [f"# card: {path}", text.rstrip("\n"), "", f"# what {name} needs"]
    for key in ("train", "test"):
        split = table.get(key, f"{key}.txt")
        if split:
            where = folder / split
            lines.append(f"{key:<7} {where}  ({'present' if where.is_file() else 'missing'})")
    try:
        spec = load_spec(path)
    except UserError as exc:
        lines.append(f"source  none: {exc}")
    else:
        for pinned in spec.sources:
            lines.append(f"source  {pinned.filename}: {pinned.url} (sha256 {pinned.sha256[:12]}...)")
        if spec.supported:
            lines.append(f"prepare seqgan-kit data prepare {name}  (offline: one --source PATH per source, in this "
                         f"order)")
        else:
            lines.append(f"prepare not by `data prepare` ({spec.method}): put the split files in {folder}/")
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace) -> int:
    print(show_card(args.corpus, args.root))
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

    p = actions.add_parser("show", help="print a corpus card, the split files it needs and its pinned sources")
    p.add_argument("corpus", metavar="CARD", help="a packaged card name (see `data list`) or a card .toml path")
    p.add_argument("--root", help=root_help)
    p.set_defaults(func=_cmd_show)
