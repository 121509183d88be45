"""seqgan_kit.data.prepare: `seqgan-kit data prepare` rebuilds the shared corpora byte for byte, offline.

Sources come from ``../shared/corpora`` (raw files in ``sources/``; ``image_coco``/``emnlp_news`` are verbatim
copies, so their shared files are their sources). URLs are served on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from seqgan_kit.data import prepare as prep
from seqgan_kit.data.data_config import CARDS_DIR, DATA_ENV, with_card
from seqgan_kit.errors import UserError
from seqgan_kit.files import HOST_TAG, file_sha256, remove_stale_temp_files, temp_owner, temp_path

from .conftest import require_shared

SOURCES = {
    "poetry_quatrain5": ["sources/texygen_shi.txt"],
    "obama_speech": ["sources/obama_speeches.txt"],
    "image_coco": ["image_coco/train.txt", "image_coco/test.txt"],
    "emnlp_news": ["emnlp_news/test.txt"],
}
"""The local copies of each card's sources, relative to ``shared/corpora``, in card order."""
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def corpora_dir() -> Path:
    return require_shared("corpora")


def local_sources(card: str) -> list[str]:
    return [str(corpora_dir() / rel) for rel in SOURCES[card]]


def manifest() -> dict:
    return json.loads((corpora_dir() / "manifest.json").read_text(encoding="utf-8"))


def quiet(_message: str) -> None:
    """A ``log`` that drops progress messages."""


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def assert_nothing_left(root: Path, card: str) -> None:
    """No corpus folder and no temporary build folder for ``card`` under ``root``."""
    if root.exists():
        left = [p.name for p in root.iterdir() if p.name == card or p.name.startswith(f".{card}")]
        assert left == [], left


def assert_matches_shared(folder: Path, card: str) -> None:
    files = manifest()["corpora"][card]["files"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{split}.txt" for split in files)
    for split, entry in files.items():
        built = folder / f"{split}.txt"
        assert built.read_bytes() == (corpora_dir() / entry["path"]).read_bytes(), built
        assert file_sha256(built) == entry["sha256"]


@pytest.fixture(scope="module")
def prepared_q5(tmp_path_factory) -> Path:
    """``poetry_quatrain5`` prepared once from the local source; tests copy the folder before changing it."""
    root = tmp_path_factory.mktemp("q5root")
    return prep.prepare_corpus("poetry_quatrain5", local_sources("poetry_quatrain5"), root=root, log=quiet)


@pytest.fixture
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 go straight to the local server, whatever proxy the environment names."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1 in a thread; yields the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def card_with_urls(tmp_path: Path, card: str, urls: list[str]) -> Path:
    """A copy of a packaged card whose source URLs are replaced by ``urls`` (in card order)."""
    text = (CARDS_DIR / f"{card}.toml").read_text(encoding="utf-8")
    spec = prep.load_spec(card)
    assert len(urls) == len(spec.sources)
    for pinned, url in zip(spec.sources, urls, strict=True):
        assert text.count(f'"{pinned.url}"') == 1
        text = text.replace(f'"{pinned.url}"', f'"{url}"')
    path = tmp_path / "cards" / f"{card}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- byte-for-byte reproduction


@pytest.mark.slow
@pytest.mark.parametrize("card", ["poetry_quatrain5", "obama_speech", "image_coco", "emnlp_news"])
def test_prepare_reproduces_the_shared_corpus_byte_for_byte(tmp_path, card):
    messages: list[str] = []
    folder = prep.prepare_corpus(card, local_sources(card), root=tmp_path, log=messages.append)
    assert folder == tmp_path / card
    assert_matches_shared(folder, card)
    assert [p.name for p in tmp_path.iterdir()] == [card]  # no temporary folder left
    assert "every sha256 matches the card" in messages[-1]


def test_cards_record_the_manifest_hashes_and_the_pinned_sources():
    data = manifest()
    for card in SOURCES:
        spec = prep.load_spec(card)
        expected = {f"{split}.txt": (f["sha256"], f["lines"], f["bytes"])
                    for split, f in data["corpora"][card]["files"].items()}
        assert {name: (e.sha256, e.lines, e.bytes) for name, e in spec.outputs.items()} == expected
        assert [p.sha256 for p in spec.sources] == [file_sha256(path) for path in local_sources(card)]
        for pinned in spec.sources:
            assert pinned.url.startswith("https://raw.githubusercontent.com/")
            assert data["corpora"][card]["source"]["commit"] in pinned.url
        assert spec.seed == data["seed"]


def load_reference():
    """The shared reference program, as a module (its functions are the specification)."""
    spec = importlib.util.spec_from_file_location("reference_prepare", corpora_dir() / "reference_prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cleaning_and_grouping_agree_with_the_reference_beyond_the_pinned_order():
    """Same results as the reference functions on inputs the hashes do not cover (reversed order)."""
    ref = load_reference()
    shi = corpora_dir() / "sources/texygen_shi.txt"
    poems = [line.strip() for line in shi.read_text(encoding="utf-8").split("\n") if line.strip()]
    poems = ref.dedupe([p for p in poems if prep.cleaning._QUATRAIN5.fullmatch(p)], ref.han_key)[::-1]
    assert prep.one_per_group(poems, prep.poem_variants(poems)) == ref.near_dedupe_poems(poems)

    raw = (corpora_dir() / "sources/obama_speeches.txt").read_text(encoding="utf-8").split("\n")
    cleaned = [prep.clean_paragraph(line) for line in raw if line.strip()]
    assert cleaned == [ref.clean_obama_line(line) for line in raw if line.strip()]
    paragraphs = [p for p in dict.fromkeys(cleaned) if len(p.split()) >= 3][::-1]
    ours = prep.one_per_group(paragraphs, prep.paragraph_overlaps(paragraphs), weight=lambda p: len(p.split()))
    assert ours == ref.near_dedupe_paragraphs(paragraphs)


# --------------------------------------------------------------------------- bad sources leave nothing


@pytest.mark.parametrize("damage", ["one_byte", "truncated"])
def test_a_damaged_source_is_one_line_error_and_leaves_no_corpus(tmp_path, damage):
    data = bytearray((corpora_dir() / "sources/texygen_shi.txt").read_bytes())
    if damage == "one_byte":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 1000]
    bad = tmp_path / "shi.txt"
    bad.write_bytes(bytes(data))
    root = tmp_path / "root"
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("poetry_quatrain5", [str(bad)], root=root, log=quiet)
    message = assert_one_line(exc)
    assert str(bad) in message and file_sha256(bad) in message
    assert prep.load_spec("poetry_quatrain5").sources[0].sha256 in message
    assert_nothing_left(root, "poetry_quatrain5")


def test_a_damaged_second_source_leaves_nothing_either(tmp_path):
    train, test = local_sources("image_coco")
    bad = tmp_path / "test_coco.txt"
    bad.write_bytes(Path(test).read_bytes()[:-1])
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("image_coco", [train, str(bad)], root=tmp_path / "root", log=quiet)
    assert "test_coco.txt" in assert_one_line(exc)
    assert_nothing_left(tmp_path / "root", "image_coco")


def test_a_failure_while_installing_removes_the_build_folder(tmp_path, monkeypatch):
    def broken_install(*args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prep, "_install", broken_install)
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("image_coco", local_sources("image_coco"), root=tmp_path, log=quiet)
    assert "No space left on device" in assert_one_line(exc)
    assert_nothing_left(tmp_path, "image_coco")


def test_a_stale_build_folder_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".image_coco.tmp999999999"
    stale.mkdir()
    (stale / "train.txt").write_text("half a file")
    prep.prepare_corpus("image_coco", local_sources("image_coco"), root=tmp_path, log=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image_coco"]


def test_only_this_machines_dead_writers_are_cleaned_on_a_shared_folder(tmp_path):
    """A temporary name carries its machine's tag: a dead pid of this machine is cleaned, another machine's file
    is left to it (its pid means nothing here), an untagged one (seqgan-kit 0.1) counts as this machine's."""
    ours = temp_path(tmp_path / "x.txt")
    assert ours.name == f".x.txt.tmp{os.getpid()}.{HOST_TAG}" and temp_owner(ours.name) == (os.getpid(), HOST_TAG)
    other_tag = "0" * 8 if HOST_TAG != "0" * 8 else "1" * 8
    files = {name: tmp_path / name for name in (f".x.txt.tmp999999999.{HOST_TAG}", f".x.txt.tmp999999999.{other_tag}",
                                                ".x.txt.tmp999999999", f".x.txt.tmp{os.getpid()}.{HOST_TAG}")}
    for path in files.values():
        path.write_text("half")
    removed = remove_stale_temp_files(tmp_path, "x.txt")
    assert sorted(p.name for p in removed) == sorted([f".x.txt.tmp999999999.{HOST_TAG}", ".x.txt.tmp999999999"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".x.txt.tmp999999999.{other_tag}",
                                                                 f".x.txt.tmp{os.getpid()}.{HOST_TAG}"])
    assert temp_owner("x.txt") is None and temp_owner(".x.txt.tmpabc") is None


# --------------------------------------------------------------------------- URLs


def test_a_source_url_is_downloaded_over_http(tmp_path, no_proxy):
    with serve(corpora_dir() / "sources") as base:
        folder = prep.prepare_corpus("poetry_quatrain5", [f"{base}/texygen_shi.txt"], root=tmp_path, log=quiet)
    assert_matches_shared(folder, "poetry_quatrain5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poetry_quatrain5"]  # the download went too


def test_without_source_the_card_urls_are_downloaded(tmp_path, no_proxy):
    with serve(corpora_dir()) as base:
        card = card_with_urls(tmp_path, "image_coco", [f"{base}/image_coco/train.txt", f"{base}/image_coco/test.txt"])
        messages: list[str] = []
        folder = prep.prepare_corpus(str(card), root=tmp_path / "root", log=messages.append)
    assert_matches_shared(folder, "image_coco")
    assert sum(m.startswith("downloading ") for m in messages) == 2


def test_a_file_url_source_works(tmp_path):
    url = (corpora_dir() / "emnlp_news/test.txt").as_uri()
    folder = prep.prepare_corpus("emnlp_news", [url], root=tmp_path, log=quiet)
    assert_matches_shared(folder, "emnlp_news")


def test_a_failed_download_is_one_line_error_mentioning_source(tmp_path, no_proxy):
    dead = f"http://127.0.0.1:{closed_port()}"
    card = card_with_urls(tmp_path, "emnlp_news", [f"{dead}/test_emnlp.txt"])
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus(str(card), root=tmp_path / "root", log=quiet)
    message = assert_one_line(exc)
    assert "--source" in message and "test_emnlp.txt" in message
    assert_nothing_left(tmp_path / "root", "emnlp_news")

    with serve(tmp_path) as base, pytest.raises(UserError) as exc:  # HTTP 404
        prep.prepare_corpus("poetry_quatrain5", [f"{base}/missing.txt"], root=tmp_path / "root", log=quiet)
    message = assert_one_line(exc)
    assert "404" in message and "--source" in message
    assert_nothing_left(tmp_path / "root", "poetry_quatrain5")


# --------------------------------------------------------------------------- an existing corpus folder


def test_rerunning_on_a_prepared_folder_does_nothing(tmp_path, prepared_q5):
    folder = tmp_path / "poetry_quatrain5"
    shutil.copytree(prepared_q5, folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    messages: list[str] = []
    # no --source: an already prepared corpus needs no download
    assert prep.prepare_corpus("poetry_quatrain5", root=tmp_path, log=messages.append) == folder
    assert "already prepared" in messages[-1]
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poetry_quatrain5"]


def test_a_tampered_prepared_file_is_refused_without_force(tmp_path, prepared_q5):
    folder = tmp_path / "poetry_quatrain5"
    shutil.copytree(prepared_q5, folder)
    tampered = folder / "test.txt"
    tampered.write_bytes(tampered.read_bytes() + "春 眠 不 觉 晓 ， 处 处 闻 啼 鸟 。\n".encode())
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("poetry_quatrain5", local_sources("poetry_quatrain5"), root=tmp_path, log=quiet)
    message = assert_one_line(exc)
    assert "--force" in message and "test.txt" in message
    assert file_sha256(tampered) != prep.load_spec("poetry_quatrain5").outputs["test.txt"].sha256

    prep.prepare_corpus("poetry_quatrain5", local_sources("poetry_quatrain5"), root=tmp_path, force=True, log=quiet)
    assert (folder / "notes.txt").read_text() == "mine"  # --force replaces the card's files only
    (folder / "notes.txt").unlink()
    assert_matches_shared(folder, "poetry_quatrain5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poetry_quatrain5"]


def test_a_missing_prepared_file_is_refused_without_force(tmp_path, prepared_q5):
    folder = tmp_path / "poetry_quatrain5"
    shutil.copytree(prepared_q5, folder)
    (folder / "train.txt").unlink()
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("poetry_quatrain5", local_sources("poetry_quatrain5"), root=tmp_path, log=quiet)
    assert "train.txt is missing" in assert_one_line(exc)


# --------------------------------------------------------------------------- the data root


def test_the_data_root_is_env_then_root_argument_and_recipes_find_it(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    folder = prep.prepare_corpus("image_coco", local_sources("image_coco"), log=quiet)
    assert folder == tmp_path / "env" / "image_coco"
    assert_matches_shared(folder, "image_coco")
    # a recipe naming the card reads the prepared folder, with no data.dir
    assert Path(with_card({"card": "image_coco"}, None)["dir"]) == folder.resolve()

    folder = prep.prepare_corpus("image_coco", local_sources("image_coco"), root=tmp_path / "given", log=quiet)
    assert folder == tmp_path / "given" / "image_coco"
    assert_matches_shared(folder, "image_coco")


def test_the_default_data_root_is_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    prep.prepare_corpus("emnlp_news", local_sources("emnlp_news"), log=quiet)
    assert_matches_shared(tmp_path / "data" / "emnlp_news", "emnlp_news")


# --------------------------------------------------------------------------- command line


def data_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan-kit")
    prep.add_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_data_prepare(tmp_path, capsys):
    source = local_sources("poetry_quatrain5")[0]
    args = data_parser().parse_args(["data", "prepare", "poetry_quatrain5", "--source", source,
                                     "--root", str(tmp_path)])
    assert args.func(args) == 0
    assert_matches_shared(tmp_path / "poetry_quatrain5", "poetry_quatrain5")
    assert "every sha256 matches" in capsys.readouterr().out

    args = data_parser().parse_args(["data", "prepare", "poetry_quatrain5", "--root", str(tmp_path)])
    assert args.func(args) == 0
    assert "already prepared" in capsys.readouterr().out


def test_cli_data_list(tmp_path, capsys):
    prep.prepare_corpus("image_coco", local_sources("image_coco"), root=tmp_path, log=quiet)
    (tmp_path / "emnlp_news").mkdir()
    (tmp_path / "emnlp_news" / "test.txt").write_text("not the file\n")
    args = data_parser().parse_args(["data", "list", "--root", str(tmp_path)])
    assert args.func(args) == 0
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["image_coco"] == ["yes", "yes"]
    assert rows["emnlp_news"] == ["differs", "yes"]
    assert rows["poetry_quatrain5"] == ["no", "yes"]
    assert rows["poetry_quatrain7"][0] == "no" and rows["poetry_quatrain7"][1].startswith("no")


def test_cli_data_needs_an_action():
    with pytest.raises(SystemExit):
        data_parser().parse_args(["data"])


# --------------------------------------------------------------------------- cards that cannot be prepared


def test_quatrain7_and_unknown_cards_are_user_errors(tmp_path):
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("poetry_quatrain7", root=tmp_path / "root", log=quiet)
    assert "poetry_quatrain7 cannot be prepared" in assert_one_line(exc)
    assert not (tmp_path / "root").exists()

    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("no_such_corpus", root=tmp_path / "root", log=quiet)
    assert "unknown corpus card" in assert_one_line(exc)

    with pytest.raises(UserError) as exc:
        prep.prepare_corpus(str(tmp_path / "missing.toml"), root=tmp_path / "root", log=quiet)
    assert_one_line(exc)


def test_wrong_source_count_and_bad_prepare_tables_are_user_errors(tmp_path):
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("image_coco", local_sources("image_coco")[:1], root=tmp_path, log=quiet)
    message = assert_one_line(exc)
    assert "image_coco.txt, test_coco.txt" in message
    with pytest.raises(UserError) as exc:
        prep.prepare_corpus("image_coco", [str(tmp_path / "nope.txt"), str(tmp_path / "nope2.txt")], root=tmp_path,
                            log=quiet)
    assert "not found" in assert_one_line(exc)
    assert_nothing_left(tmp_path, "image_coco")

    card = tmp_path / "bad.toml"
    for body, needle in [
        ('name = "bad"\n', "no [prepare] table"),
        ('name = "bad"\n[prepare]\nmethod = "magic"\n', "method must be one of"),
        ('name = "bad"\n[prepare]\nmethod = "verbatim"\ncolour = 1\n', "unknown key 'colour'"),
        ('name = "bad"\n[prepare]\nmethod = "verbatim"\n[prepare.outputs]\n"a.txt" = { sha256 = "x", lines = 1 }\n',
         "sha256 must be 64"),
    ]:
        card.write_text(body)
        with pytest.raises(UserError) as exc:
            prep.prepare_corpus(str(card), root=tmp_path, log=quiet)
        assert needle in assert_one_line(exc)
