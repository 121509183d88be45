"""seqgan_kit.corpus: loading lines (files, Hugging Face datasets), encoding, vocab reuse, and the corpus cards."""

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from seqgan_kit.data.corpus import (
    TextData,
    decode_rows,
    encode_examples,
    load_lines,
    load_text_pipeline,
    prepare_text_data,
    row_lengths,
    split_sentences,
    unk_rate,
)
from seqgan_kit.data.data_config import CARDS_DIR as CARDS  # noqa: E402
from seqgan_kit.data.data_config import DataConfig, load_card
from seqgan_kit.data.tokenization import (
    EOS,
    PAD,
    SPECIALS,
    UNK,
    CharTokenizer,
    Vocab,
    WhitespaceTokenizer,
    train_sentencepiece,
)
from seqgan_kit.errors import UserError
from seqgan_kit.train.recipe import build_config
from tests.conftest import require_shared
from tests.test_tokenization import english_lines

POEMS = ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。", "春眠不觉晓，处处闻啼鸟。", "夜来风雨声，花落知多少。"]


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_layout(rows: torch.Tensor, max_tokens: int) -> None:
    """The encoding convention: one EOS per row, PAD exactly after it, no PAD/BOS/EOS before it."""
    assert rows.dtype == torch.int64 and rows.shape[1] == max_tokens + 1
    assert ((rows == EOS).sum(dim=1) == 1).all()
    lengths = row_lengths(rows)
    positions = torch.arange(max_tokens + 1)[None, :]
    assert (rows[positions > lengths[:, None]] == PAD).all()
    assert (rows[positions < lengths[:, None]] > EOS).all()  # ids 0-2 never occur before EOS


# --------------------------------------------------------------------------- encoding
def test_encode_examples_layout_and_truncation():
    vocab = Vocab.build([list("abcdefg")])
    a, b, c, d, e = vocab.encode("abcde")
    rows, truncated = encode_examples([list("abc"), list("abcde"), list("abcdefg"), list("a?")], vocab, max_tokens=5)
    assert truncated == 1
    assert rows.tolist() == [
        [a, b, c, EOS, PAD, PAD],
        [a, b, c, d, e, EOS],
        [a, b, c, d, e, EOS],  # 7 tokens truncated to 5
        [a, UNK, EOS, PAD, PAD, PAD],
    ]
    check_layout(rows, 5)
    assert row_lengths(rows).tolist() == [3, 5, 5, 2]
    assert unk_rate(rows) == pytest.approx(1 / 15)
    assert decode_rows(rows, vocab, CharTokenizer()) == ["abc", "abcde", "abcde", "a<unk>"]
    empty, n = encode_examples([], vocab, max_tokens=3)
    assert empty.shape == (0, 4) and n == 0


def test_row_lengths_without_eos():
    assert row_lengths(torch.tensor([[5, 6, 7], [5, EOS, PAD]])).tolist() == [3, 1]


# --------------------------------------------------------------------------- sentence segmentation
def test_split_sentences():
    text = ('Thank you. He said "Go." Then he left! Did Mr. Smith stay? 3 people came. George W. Bush and the '
            'U.S. Senate agreed (e.g. on jobs). "Yes," she said... (Applause.) It ends here')
    assert split_sentences(text) == [
        "Thank you.",
        'He said "Go."',
        "Then he left!",
        "Did Mr. Smith stay?",
        "3 people came.",
        "George W. Bush and the U.S. Senate agreed (e.g. on jobs).",
        '"Yes," she said...',
        "(Applause.)",
        "It ends here",
    ]
    assert split_sentences("no split. here because lowercase") == ["no split. here because lowercase"]
    assert split_sentences("  One.  Two.  ") == ["One.", "Two."]


# --------------------------------------------------------------------------- loading lines from files
def test_load_lines_dir_and_plain_paths(tmp_path, monkeypatch):
    write(tmp_path / "c" / "train.txt", ["  a b  ", "", "c d", "   ", "e f"])
    write(tmp_path / "c" / "test.txt", ["x y", ""])
    train, test = load_lines(DataConfig(dir=str(tmp_path / "c")), seed=0)
    assert train == ["a b", "c d", "e f"] and test == ["x y"]
    monkeypatch.chdir(tmp_path)  # with dir empty, relative paths are relative to the CWD
    assert load_lines(DataConfig(train="c/train.txt", test="c/test.txt"), seed=0) == (train, test)
    assert load_lines(DataConfig(train="c/train.txt", test="c/test.txt", max_train=2), seed=0)[0] == ["a b", "c d"]


def test_held_out_test_split_is_seeded(tmp_path):
    write(tmp_path / "train.txt", [f"line {i}" for i in range(50)])
    cfg = DataConfig(dir=str(tmp_path), test="", test_fraction=0.2)
    train, test = load_lines(cfg, seed=0)
    assert len(train) == 40 and len(test) == 10 and not set(train) & set(test)
    assert sorted(train + test, key=lambda s: int(s.split()[1])) == [f"line {i}" for i in range(50)]
    assert train == sorted(train, key=lambda s: int(s.split()[1]))  # both keep the file's order
    assert load_lines(cfg, seed=0) == (train, test)
    assert load_lines(cfg, seed=1)[1] != test


def test_sentence_segmentation_of_files_holds_out_paragraphs(tmp_path):
    paragraphs = [f"Paragraph {i} starts. It goes on! Does it end? Yes." for i in range(10)]
    write(tmp_path / "train.txt", paragraphs)
    cfg = DataConfig(dir=str(tmp_path), test="", test_fraction=0.3, segment="sentence")
    train, test = load_lines(cfg, seed=3)
    assert len(train) == 28 and len(test) == 12
    first = {s.split()[1] for s in test if s.startswith("Paragraph")}
    assert len(first) == 3 and not any(s.split()[1] in first for s in train if s.startswith("Paragraph"))
    assert train[:4] == [f"Paragraph {train[0].split()[1]} starts.", "It goes on!", "Does it end?", "Yes."]


def test_empty_blank_and_non_utf8_files(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    write(tmp_path / "blank.txt", ["", "   ", "\t"])
    (tmp_path / "latin1.txt").write_bytes("fine line\ncaf\xe9 au lait\n".encode("latin-1"))
    write(tmp_path / "ok.txt", ["a b"])
    with pytest.raises(UserError, match=r"empty\.txt is empty"):
        load_lines(DataConfig(dir=str(tmp_path), train="empty.txt", test="ok.txt"), seed=0)
    with pytest.raises(UserError, match=r"blank\.txt has no text: all of its 3 lines are blank"):
        load_lines(DataConfig(dir=str(tmp_path), train="blank.txt", test="ok.txt"), seed=0)
    with pytest.raises(UserError, match=r"blank\.txt has no text"):
        load_lines(DataConfig(dir=str(tmp_path), train="ok.txt", test="blank.txt"), seed=0)
    with pytest.raises(UserError, match=r"latin1\.txt is not UTF-8 text \(bad byte 0xe9 at offset 13, line 2\)"):
        load_lines(DataConfig(dir=str(tmp_path), train="latin1.txt", test="ok.txt"), seed=0)


def test_missing_files_and_test_only_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"training file not found: train\.txt \(data\.dir is empty.*set data\.dir"):
        load_lines(DataConfig(), seed=0)
    with pytest.raises(UserError, match="file not found: .*nothing/train.txt"):
        load_lines(DataConfig(dir=str(tmp_path / "nothing")), seed=0)
    write(tmp_path / "test.txt", ["only a test line"])
    with pytest.raises(UserError, match="corpus 'news' has no training file .*test-only"):
        load_lines(DataConfig(name="news", dir=str(tmp_path), train=""), seed=0)


def test_hold_out_needs_two_examples(tmp_path):
    write(tmp_path / "train.txt", ["only one"])
    with pytest.raises(UserError, match="cannot hold out a test split from 1 example"):
        load_lines(DataConfig(dir=str(tmp_path), test=""), seed=0)


# --------------------------------------------------------------------------- Hugging Face datasets, offline
@pytest.fixture
def offline_hf(tmp_path, monkeypatch):
    """HF offline with a private HF_HOME, and every socket connection / DNS lookup refused (and recorded)."""
    import datasets
    import huggingface_hub.constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # datasets reads these at import time: patch the live values too.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_MODULES_CACHE", home / "modules")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] or args))
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


def hf_cfg(name: str, **kw) -> DataConfig:
    return DataConfig(hf_dataset=name, **kw)


def test_hf_save_to_disk(tmp_path, offline_hf):
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a b", "", "c d", None], "id": [1, 2, 3, 4]}),
        "validation": datasets.Dataset.from_dict({"text": ["v w"], "id": [5]}),
    }).save_to_disk(str(folder))
    cfg = hf_cfg(str(folder), hf_test_split="validation")
    assert load_lines(cfg, seed=0) == (["a b", "c d"], ["v w"])
    with pytest.raises(UserError, match=r"has no split 'train2' \(splits: train, validation\); set data\.hf_train"):
        load_lines(replace(cfg, hf_train_split="train2"), seed=0)
    with pytest.raises(UserError, match=r"has no column 'body' \(columns: text, id\); set data\.text_field"):
        load_lines(replace(cfg, text_field="body"), seed=0)
    with pytest.raises(UserError, match="column 'id' holds .*int64.*not text"):
        load_lines(replace(cfg, text_field="id"), seed=0)
    # No "test" split: hold out test_fraction of train (logged by prepare_text_data).
    train, test = load_lines(replace(cfg, hf_test_split="test", test_fraction=0.5), seed=0)
    assert len(train) == 1 and len(test) == 1 and sorted(train + test) == ["a b", "c d"]
    assert offline_hf == []


def test_hf_lone_dataset_saved_to_disk(tmp_path, offline_hf):
    import datasets

    datasets.Dataset.from_dict({"text": [f"s {i}" for i in range(10)]}).save_to_disk(str(tmp_path / "one"))
    train, test = load_lines(hf_cfg(str(tmp_path / "one")), seed=0)
    assert len(train) == 9 and len(test) == 1


def test_hf_folder_of_jsonl_files(tmp_path, offline_hf):
    folder = tmp_path / "jsonl"
    folder.mkdir()
    for split, texts in {"train": POEMS[:2], "test": POEMS[2:3]}.items():
        rows = [json.dumps({"poem": t, "n": i}, ensure_ascii=False) for i, t in enumerate(texts)]
        write(folder / f"{split}.jsonl", rows)
    cfg = hf_cfg(str(folder), text_field="poem", tokenizer="char", max_tokens=12)
    assert load_lines(cfg, seed=0) == (POEMS[:2], POEMS[2:3])
    data = prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda s: None)
    assert data.train.shape == (2, 13) and data.test_lines == POEMS[2:3]
    assert offline_hf == []


def test_hf_unreachable_hub_id(offline_hf):
    with pytest.raises(UserError, match=r"cannot load Hugging Face dataset 'nobody/no-such-dataset': ") as err:
        load_lines(hf_cfg("nobody/no-such-dataset"), seed=0)
    assert "\n" not in str(err.value)
    assert offline_hf == []


# --------------------------------------------------------------------------- prepare_text_data
def test_prepare_char_corpus(tmp_path):
    write(tmp_path / "c" / "train.txt", [" ".join(p) for p in POEMS[:3]] + ["", "床前明月光，疑是地上霜。举头望明月。"])
    write(tmp_path / "c" / "test.txt", POEMS[3:] + ["床前明月"])
    cfg = DataConfig(name="tiny", dir=str(tmp_path / "c"), tokenizer="char", max_tokens=12)
    logged: list[str] = []
    data = prepare_text_data(cfg, tmp_path / "run", seed=0, log=logged.append)
    assert isinstance(data, TextData) and isinstance(data.tokenizer, CharTokenizer)
    assert data.train.shape == (4, 13) and data.test.shape == (2, 13)
    check_layout(data.train, 12)
    check_layout(data.test, 12)
    s = data.stats
    assert (s["n_train"], s["n_test"], s["truncated_train"], s["truncated_test"], s["skipped_blank"]) == (4, 2, 1, 0, 1)
    assert s["vocab_size"] == len(data.vocab) == 4 + len(set("".join(POEMS[:3])))
    assert s["max_len_train"] == 18 and s["mean_len_train"] == pytest.approx((12 * 3 + 18) / 4)
    n_unk = sum(c not in "".join(POEMS[:3]) for c in POEMS[3])
    assert s["unk_rate_test"] == pytest.approx(n_unk / 16)
    assert data.test_lines == [POEMS[3], "床前明月"]
    assert data.decode(data.train[:1]) == [POEMS[0]]
    assert "data: truncated 1 of 4 training examples and 0 of 2 test examples to 12 tokens" in "\n".join(logged)
    assert "skipped 1 blank lines" in logged[0]
    saved = Vocab.load(tmp_path / "run" / "vocab.json")
    assert saved == data.vocab
    assert saved.meta["corpus"] == "tiny" and saved.meta["tokenizer"] == "char" and saved.meta["spm_sha256"] == ""


def test_truncating_over_one_percent_warns_on_stderr_naming_the_key(tmp_path, capsys):
    write(tmp_path / "c" / "train.txt", [" ".join(p) for p in POEMS[:3]] + ["床前明月光，疑是地上霜。举头望明月。"])
    write(tmp_path / "c" / "test.txt", POEMS[3:])
    cfg = DataConfig(name="tiny", dir=str(tmp_path / "c"), tokenizer="char", max_tokens=12)
    prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda _: None)
    err = capsys.readouterr().err.splitlines()
    assert err == ["seqgan-kit: warning: tiny: 1 of 5 examples (20.0%: 1 of 4 training, 0 of 1 test) are longer "
                   "than data.max_tokens = 12 tokens and lose their end (training lengths: p95 18, p99 18, max 18); "
                   "to keep them: --set data.max_tokens=18 or more"]
    prepare_text_data(DataConfig(name="tiny", dir=str(tmp_path / "c"), tokenizer="char", max_tokens=18),
                      tmp_path / "run2", seed=0, log=lambda _: None)
    assert capsys.readouterr().err == ""  # nothing cut: no warning


def test_prepare_lowercases_whitespace_text(tmp_path):
    write(tmp_path / "train.txt", ["A Man rides a HORSE .", "a man eats ."])
    write(tmp_path / "test.txt", ["A Horse eats a Carrot ."])
    cfg = DataConfig(dir=str(tmp_path), tokenizer="whitespace", lowercase=True, max_tokens=8, min_freq=2)
    data = prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda s: None)
    assert isinstance(data.tokenizer, WhitespaceTokenizer)
    assert data.vocab.tokens == [*SPECIALS, "a", ".", "man"]  # a: 3, then "." and "man": 2 (by token)
    assert data.test_lines == ["a horse eats a carrot ."]
    assert data.decode(data.test) == ["a <unk> <unk> a <unk> ."]
    assert data.stats["unk_rate_test"] == pytest.approx(3 / 6)


def spm_corpus(tmp_path: Path) -> DataConfig:
    paragraphs = [" ".join(english_lines(3, seed=i)) for i in range(120)]
    write(tmp_path / "speech" / "train.txt", paragraphs[:100])
    write(tmp_path / "speech" / "test.txt", paragraphs[100:])
    return DataConfig(name="speech", dir=str(tmp_path / "speech"), tokenizer="sentencepiece", spm_vocab_size=150,
                      segment="sentence", max_tokens=24)


def test_prepare_reuses_vocab_and_spm_model_on_resume(tmp_path):
    cfg = spm_corpus(tmp_path)
    run = tmp_path / "run"
    logged: list[str] = []
    first = prepare_text_data(cfg, run, seed=0, log=logged.append)
    assert any("training a unigram sentencepiece model" in line for line in logged)
    assert first.stats["n_train"] == 300 and first.stats["n_test"] == 60  # 3 sentences per paragraph
    assert 0 < first.stats["truncated_train"] < 300
    check_layout(first.train, 24)
    model, vocab_file = run / "spm.model", run / "vocab.json"
    stamps = (model.stat().st_mtime_ns, vocab_file.stat().st_mtime_ns, model.read_bytes())
    assert Vocab.load(vocab_file).meta["spm_sha256"] == first.tokenizer.sha256

    logged.clear()
    second = prepare_text_data(cfg, run, seed=0, log=logged.append)
    assert not any("sentencepiece model" in line for line in logged) and "reusing the vocabulary" in logged[0]
    assert (model.stat().st_mtime_ns, vocab_file.stat().st_mtime_ns, model.read_bytes()) == stamps
    assert second.vocab == first.vocab
    assert torch.equal(second.train, first.train) and torch.equal(second.test, first.test)

    mismatches = {
        "lowercase": (replace(cfg, lowercase=True), "built with data.lowercase=False but the config has True"),
        "tokenizer": (replace(cfg, tokenizer="whitespace"), "built with data.tokenizer='sentencepiece'"),
        "corpus": (replace(cfg, name="other"), "built with data.name='speech' but the config has 'other'"),
        "min_freq": (replace(cfg, min_freq=2), "data.min_freq=1"),
        "max_train": (replace(cfg, max_train=50), "built from other training examples"),
    }
    for key, (changed, message) in mismatches.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            prepare_text_data(changed, run, seed=0, log=lambda s: None)
        assert model.read_bytes() == stamps[2], key

    other_model = tmp_path / "other.model"
    other_model.write_bytes(model.read_bytes())
    model.write_bytes(first.tokenizer.sha256.encode())  # a different file in place of the model
    with pytest.raises(UserError, match="cannot read sentencepiece model"):
        prepare_text_data(cfg, run, seed=0, log=lambda s: None)
    model.unlink()
    with pytest.raises(UserError, match="exists but its sentencepiece model .*spm.model is missing"):
        prepare_text_data(cfg, run, seed=0, log=lambda s: None)
    retrained = train_sentencepiece(english_lines(100, seed=9), tmp_path / "retrained.model", vocab_size=120)
    with pytest.raises(UserError, match="built with another sentencepiece model"):
        prepare_text_data(replace(cfg, spm_model=str(retrained)), run, seed=0, log=lambda s: None)
    # The original model given explicitly passes the check.
    again = prepare_text_data(replace(cfg, spm_model=str(other_model)), run, seed=0, log=lambda s: None)
    assert torch.equal(again.train, first.train)


def test_load_text_pipeline(tmp_path):
    cfg = spm_corpus(tmp_path)
    run = tmp_path / "run"
    data = prepare_text_data(cfg, run, seed=0, log=lambda s: None)
    tokenizer, vocab = load_text_pipeline(cfg, run)
    assert vocab == data.vocab and tokenizer.sha256 == data.tokenizer.sha256
    assert decode_rows(data.test[:3], vocab, tokenizer) == data.decode(data.test[:3])
    with pytest.raises(UserError, match="built with data.name='speech' but the config has 'poems'"):
        load_text_pipeline(replace(cfg, name="poems"), run)
    with pytest.raises(UserError, match=f"no vocabulary in {tmp_path}"):
        load_text_pipeline(cfg, tmp_path)
    (run / "spm.model").unlink()
    with pytest.raises(UserError, match=f"sentencepiece model not found: {run / 'spm.model'}"):
        load_text_pipeline(cfg, run)


def test_prepare_with_no_training_token(tmp_path):
    write(tmp_path / "train.txt", ["a"])
    write(tmp_path / "test.txt", ["b"])
    cfg = DataConfig(dir=str(tmp_path), tokenizer="whitespace", max_tokens=4)
    data = prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda s: None)
    assert data.train.tolist() == [[4, EOS, PAD, PAD, PAD]] and data.test.tolist() == [[UNK, EOS, PAD, PAD, PAD]]


# --------------------------------------------------------------------------- the corpus cards
CARD_NAMES = ["poetry_quatrain5", "poetry_quatrain7", "obama_speech", "image_coco", "emnlp_news"]


def test_every_card_is_listed_and_loads():
    assert sorted(p.stem for p in CARDS.glob("*.toml")) == sorted(CARD_NAMES)
    for name in CARD_NAMES:
        card = load_card(CARDS / f"{name}.toml")
        cfg = DataConfig(**card)
        assert cfg.name == name and cfg.dir == "" and cfg.eval_tokenizer and cfg.bleu_orders


@pytest.mark.parametrize("name, n_test, vocab_min, max_unk", [  # UNK rates with 2,000 training examples
    ("poetry_quatrain5", 2000, 1500, 0.05), ("poetry_quatrain7", 2000, 1500, 0.05),
    ("obama_speech", 2114, 1500, 0.01), ("image_coco", 10000, 1500, 0.2),
])
def test_card_produces_data_from_shared_corpus(tmp_path, name, n_test, vocab_min, max_unk):
    folder = require_shared("corpora", name)
    recipe = {"task": "text", "data": {"card": str(CARDS / f"{name}.toml"), "dir": str(folder), "max_train": 2000}}
    cfg = build_config(recipe).data
    data = prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda s: None)
    assert data.train.shape == (2000, cfg.max_tokens + 1) and data.test.shape == (n_test, cfg.max_tokens + 1)
    check_layout(data.train, cfg.max_tokens)
    check_layout(data.test, cfg.max_tokens)
    s = data.stats
    assert s["truncated_train"] / s["n_train"] < 0.05 and s["truncated_test"] / s["n_test"] < 0.06
    assert len(data.vocab) > vocab_min and s["unk_rate_test"] < max_unk
    if name.startswith("poetry"):
        assert s["truncated_train"] == s["truncated_test"] == 0 and (row_lengths(data.train) == cfg.max_tokens).all()
        known = int((~(data.test == UNK).any(dim=1)).nonzero()[0])  # a test poem without UNK
        assert data.decode(data.test[known:known + 1]) == ["".join(data.test_lines[known].split())]


def test_test_only_card(tmp_path):
    folder = require_shared("corpora", "emnlp_news")
    cfg = replace(DataConfig(**load_card(CARDS / "emnlp_news.toml")), dir=str(folder))
    with pytest.raises(UserError, match="corpus 'emnlp_news' has no training file"):
        prepare_text_data(cfg, tmp_path / "run", seed=0, log=lambda s: None)
    lengths = [len(line.split()) for line in (folder / "test.txt").read_text(encoding="utf-8").splitlines()]
    assert len(lengths) == 10000 and max(lengths) == cfg.max_tokens  # max_tokens covers every test sentence
