"""seqgan_kit.tokenization: the vocabulary, the three tokenizers and sentencepiece training."""

import hashlib
import json
import random

import pytest
import torch

from seqgan_kit.data.data_config import DataConfig
from seqgan_kit.data.tokenization import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    CharTokenizer,
    SentencePieceTokenizer,
    Vocab,
    WhitespaceTokenizer,
    make_tokenizer,
    train_sentencepiece,
)
from seqgan_kit.errors import UserError
from tests.conftest import require_shared

POEMS = ["床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。", "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"]


def english_lines(n: int, seed: int = 0) -> list[str]:
    """Deterministic speech-like English sentences (cased, punctuation, digits)."""
    rng = random.Random(seed)
    subjects = ["We", "The American people", "Our children", "America", "This country", "Every family", "I"]
    verbs = ["need", "deserve", "will build", "can choose", "must protect", "believe in", "fought for"]
    objects = ["a better future", "good jobs", "the middle class", "clean energy", "health care",
               "our schools", "1,000 new bridges", "the 21st century", "Main Street"]
    tails = [".", "!", "?", ", and that matters.", " -- today.", "; that's who we are."]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(tails)}"
            for _ in range(n)]


# --------------------------------------------------------------------------- vocabulary
def test_specials():
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert SPECIALS == ("<pad>", "<bos>", "<eos>", "<unk>")


def test_build_orders_by_frequency_then_token():
    lists = [["b", "a", "c"], ["a", "b", "d"], ["d", "b", "a"]]  # a:3 b:3 d:2 c:1
    vocab = Vocab.build(lists)
    assert vocab.tokens == [*SPECIALS, "a", "b", "d", "c"]
    assert len(vocab) == 8
    assert Vocab.build(reversed(lists)).tokens == vocab.tokens  # order of the input does not matter
    assert Vocab.build(lists, min_freq=2).tokens == [*SPECIALS, "a", "b", "d"]
    assert Vocab.build(lists, max_size=2).tokens == [*SPECIALS, "a", "b"]
    assert Vocab.build(lists, min_freq=3, max_size=1).tokens == [*SPECIALS, "a"]


def test_encode_unknown_and_specials_in_text():
    vocab = Vocab.build([["a", "b", "b"]])
    assert vocab.encode(["b", "a", "zzz"]) == [4, 5, UNK]
    # Special strings met in the text never become PAD/BOS/EOS (only the encoder places those); "<unk>" is UNK.
    assert vocab.encode(["<pad>", "<bos>", "<eos>", "<unk>"]) == [UNK] * 4
    assert vocab.id("a") == 5 and vocab.id("nope") == UNK


def test_decode_stops_at_eos_and_skips_pad_bos():
    vocab = Vocab.build([["x", "y"]])
    x, y = vocab.encode(["x", "y"])
    assert vocab.decode([BOS, x, PAD, y, UNK, EOS, x, y]) == ["x", "y", "<unk>"]
    assert vocab.decode(torch.tensor([x, EOS, PAD, PAD])) == ["x"]
    assert vocab.decode([EOS, x]) == []
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([x, 99])


def test_fingerprint():
    vocab = Vocab.build([["a", "b"]])
    blob = json.dumps(vocab.tokens, ensure_ascii=False, separators=(",", ":")).encode()
    assert vocab.fingerprint == hashlib.sha256(blob).hexdigest()[:12]
    assert Vocab.build([["a", "b"]]).fingerprint == vocab.fingerprint
    assert Vocab.build([["a", "c"]]).fingerprint != vocab.fingerprint


def test_save_load_round_trip(tmp_path):
    vocab = Vocab.build([["月", "光", "月"], ["hello"]])
    vocab.meta = {"corpus": "demo", "lowercase": False}
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.json"]  # no temp file left behind
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.tokens == [*SPECIALS, "月", "hello", "光"]
    assert loaded.meta == {"corpus": "demo", "lowercase": False}
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "seqgan-kit-vocab" and data["size"] == 7 and data["fingerprint"] == vocab.fingerprint


@pytest.mark.parametrize("content, message", [
    (None, "vocabulary not found"),
    (b"{not json", "is corrupt (not UTF-8 JSON"),
    (b"\xff\xfe{}", "is corrupt (not UTF-8 JSON"),
    (b'{"tokens": ["<pad>"]}', "is not a seqgan-kit vocabulary"),
    (b"[1, 2]", "is not a seqgan-kit vocabulary"),
    (b'{"format": "seqgan-kit-vocab", "version": 9, "tokens": []}', "unsupported vocabulary version 9"),
    (b'{"format": "seqgan-kit-vocab", "version": 1, "tokens": ["a", "b"]}', "is corrupt: a vocabulary starts with"),
    (b'{"format": "seqgan-kit-vocab", "version": 1, "tokens": "abc"}', "must be a list of strings"),
])
def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match="vocab") as err:
        Vocab.load(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_load_detects_tampered_tokens(tmp_path):
    path = tmp_path / "vocab.json"
    Vocab.build([["a", "b"]]).save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokens"][4], data["tokens"][5] = data["tokens"][5], data["tokens"][4]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UserError, match="do not match its fingerprint"):
        Vocab.load(path)


# --------------------------------------------------------------------------- char / whitespace
def test_char_tokenizer_chinese_round_trip():
    tok = CharTokenizer()
    tokens = tok.tokenize(POEMS[0])
    assert len(tokens) == 24 and tokens[5] == "，" and tokens[11] == "。" and tokens[:2] == ["床", "前"]
    assert tok.tokenize(" ".join(POEMS[0])) == tokens  # the corpus files separate characters with spaces
    vocab = Vocab.build(tok.tokenize(p) for p in POEMS)
    for poem in POEMS:
        assert tok.detokenize(vocab.decode(vocab.encode(tok.tokenize(poem)))) == poem
    assert tok.detokenize(vocab.decode(vocab.encode(tok.tokenize("明月照鄉國")))) == "明月<unk>鄉<unk>"
    assert CharTokenizer(lowercase=True).tokenize("Ab c") == ["a", "b", "c"]


def test_whitespace_tokenizer():
    assert WhitespaceTokenizer().tokenize("  a man rides  a Horse. ") == ["a", "man", "rides", "a", "Horse."]
    assert WhitespaceTokenizer(lowercase=True).tokenize("A Horse.") == ["a", "horse."]
    assert WhitespaceTokenizer().detokenize(["a", "horse", "."]) == "a horse ."
    assert WhitespaceTokenizer().kind == "whitespace" and CharTokenizer().kind == "char"


# --------------------------------------------------------------------------- sentencepiece
@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    lines = english_lines(400)
    path = train_sentencepiece(lines, tmp_path_factory.mktemp("spm") / "spm.model", vocab_size=200)
    return path, lines


def test_sentencepiece_round_trip(spm_model):
    path, lines = spm_model
    tok = SentencePieceTokenizer(path)
    assert tok.kind == "sentencepiece" and not tok.lowercase
    token_lists = [tok.tokenize(line) for line in lines]
    vocab = Vocab.build(token_lists)
    assert 50 < len(vocab) <= 200 + 4
    for line, tokens in zip(lines, token_lists, strict=True):
        assert tok.detokenize(vocab.decode(vocab.encode(tokens))) == line
    assert tok.tokenize("We need good jobs.")[0].startswith("\u2581")  # word-initial pieces carry the ▁ marker


def test_sentencepiece_unknown_characters(spm_model):
    path, lines = spm_model
    tok = SentencePieceTokenizer(path)
    vocab = Vocab.build(tok.tokenize(line) for line in lines)
    ids = vocab.encode(tok.tokenize("We need ☃ jobs."))
    assert UNK in ids
    assert tok.detokenize(vocab.decode(ids)) == "We need <unk> jobs."


def test_sentencepiece_lowercase(tmp_path):
    lines = english_lines(300, seed=1)
    path = train_sentencepiece(lines, tmp_path / "lc.model", vocab_size=150, lowercase=True)
    tok = SentencePieceTokenizer(path, lowercase=True)
    vocab = Vocab.build(tok.tokenize(line) for line in lines)
    assert not any(any(c.isupper() for c in t) for t in vocab.tokens)
    for line in lines[:50]:
        assert tok.detokenize(vocab.decode(vocab.encode(tok.tokenize(line)))) == line.lower()
    assert UNK not in vocab.encode(tok.tokenize("AMERICA NEEDS GOOD JOBS."))


def test_sentencepiece_training_is_deterministic_and_atomic(tmp_path):
    lines = english_lines(200, seed=2)
    a = train_sentencepiece(lines, tmp_path / "a" / "spm.model", vocab_size=120)
    b = train_sentencepiece(lines, tmp_path / "b" / "spm.model", vocab_size=120, model_type="bpe")
    c = train_sentencepiece(lines, tmp_path / "c" / "spm.model", vocab_size=120)
    assert a.read_bytes() == c.read_bytes() and a.read_bytes() != b.read_bytes()
    assert [p.name for p in a.parent.iterdir()] == ["spm.model"]


def test_sentencepiece_tiny_corpus_and_too_small_vocab(tmp_path):
    path = train_sentencepiece(["hello world", "hello there"], tmp_path / "tiny.model", vocab_size=4000)
    tok = SentencePieceTokenizer(path)
    assert tok.detokenize(tok.tokenize("hello world")) == "hello world"
    assert len(tok) < 4000  # hard_vocab_limit=False: fewer pieces than asked for is fine
    with pytest.raises(UserError, match="raise data.spm_vocab_size"):
        train_sentencepiece(english_lines(50), tmp_path / "small.model", vocab_size=5)
    with pytest.raises(UserError, match="no non-blank training line"):
        train_sentencepiece(["", "  "], tmp_path / "blank.model", vocab_size=50)


def test_sentencepiece_on_obama_speeches(tmp_path):
    text = require_shared("corpora", "obama_speech", "train.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()[:300] if line.strip()]
    path = train_sentencepiece(lines, tmp_path / "obama.model", vocab_size=800)
    tok = SentencePieceTokenizer(path)
    vocab = Vocab.build(tok.tokenize(line) for line in lines)
    for line in lines[:100]:
        canonical = " ".join(line.split())  # sentencepiece collapses repeated spaces
        assert tok.detokenize(vocab.decode(vocab.encode(tok.tokenize(line)))) == canonical


def test_missing_or_corrupt_sentencepiece_model(tmp_path):
    missing = tmp_path / "nowhere" / "spm.model"
    with pytest.raises(UserError) as err:
        SentencePieceTokenizer(missing)
    assert f"sentencepiece model not found: {missing}" in str(err.value) and "data.spm_model" in str(err.value)
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(UserError, match=f"cannot read sentencepiece model {bad}"):
        SentencePieceTokenizer(bad)


def test_make_tokenizer(tmp_path, spm_model):
    assert isinstance(make_tokenizer(DataConfig(tokenizer="char"), tmp_path), CharTokenizer)
    ws = make_tokenizer(DataConfig(tokenizer="whitespace", lowercase=True), tmp_path)
    assert isinstance(ws, WhitespaceTokenizer) and ws.lowercase
    with pytest.raises(UserError, match=f"sentencepiece model not found: {tmp_path / 'spm.model'}"):
        make_tokenizer(DataConfig(tokenizer="sentencepiece"), tmp_path)
    (tmp_path / "spm.model").write_bytes(spm_model[0].read_bytes())
    assert make_tokenizer(DataConfig(tokenizer="sentencepiece"), tmp_path).model_path == tmp_path / "spm.model"
    explicit = make_tokenizer(DataConfig(tokenizer="sentencepiece", spm_model=str(spm_model[0])), tmp_path / "x")
    assert explicit.model_path == spm_model[0]
    with pytest.raises(UserError, match="data.tokenizer"):
        make_tokenizer(DataConfig(tokenizer="bytes"), tmp_path)
