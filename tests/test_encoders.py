"""word2vec and Skip-Thought runs end to end on ~300 poems, ``[init] embeddings``, and the CLI's bad inputs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import seqgan_kit.train.word2vec as w2v_train
from seqgan_kit.cli import main
from seqgan_kit.encoders.loading import load_encoder
from seqgan_kit.encoders.neighbours import neighbour_units, triples_of
from seqgan_kit.encoders.skipthought import SkipThought
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.train.experiment import derived_seed
from seqgan_kit.train.skipthought import SkipThoughtTrainer

from .conftest import require_shared
from .tiny import kill_on_call

ROOT = Path(__file__).resolve().parents[1]
W2V = ROOT / "recipes" / "poetry_word2vec.toml"
ST = ROOT / "recipes" / "poetry_skipthought.toml"
MLE = ROOT / "recipes" / "poetry_mle.toml"
W2V_TINY = ["word2vec.vector_size=16", "word2vec.min_count=1", "word2vec.epochs=1", "word2vec.workers=1",
            "device=cpu"]
ST_TINY = ["skipthought.emb_dim=16", "skipthought.dim=16", "skipthought.epochs=2", "skipthought.batch_size=100",
           "device=cpu"]


@pytest.fixture(scope="module")
def poems(tmp_path_factory):
    corpus = require_shared("corpora", "poetry_quatrain5")
    folder = tmp_path_factory.mktemp("poems")
    lines = (corpus / "train.txt").read_text(encoding="utf-8").splitlines()
    (folder / "train.txt").write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    test = (corpus / "test.txt").read_text(encoding="utf-8").splitlines()
    (folder / "test.txt").write_text("\n".join(test[:60]) + "\n", encoding="utf-8")
    return folder


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def train(recipe, run, poems, overrides):
    return main(["train", str(recipe), "--run-dir", str(run), *sets([f"data.dir={poems}", *overrides])])


def records(run):
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "train_s")} for r in RunDir(run).read_metrics()]


@pytest.fixture(scope="module")
def w2v_run(poems, tmp_path_factory):
    run = tmp_path_factory.mktemp("w2v") / "run"
    assert train(W2V, run, poems, W2V_TINY) == 0
    return run


@pytest.fixture(scope="module")
def st_run(poems, tmp_path_factory):
    run = tmp_path_factory.mktemp("st") / "run"
    assert train(ST, run, poems, ST_TINY) == 0
    return run


# --------------------------------------------------------------------------- word2vec
def test_word2vec_run_writes_safetensors_and_json_and_is_reproducible(w2v_run, poems, tmp_path):
    files = {p.name for p in w2v_run.iterdir()}
    assert {"word2vec.safetensors", "word2vec.json", "checkpoint.safetensors", "config.toml"} <= files
    assert not any(name.endswith((".pkl", ".pickle", ".model", ".npy")) for name in files)
    doc = json.loads((w2v_run / "word2vec.json").read_text(encoding="utf-8"))
    tensors = load_file(str(w2v_run / "word2vec.safetensors"))
    assert tensors["vectors"].shape == (len(doc["words"]), 16) and doc["params"]["window"] == 5
    assert doc["words"][0] in ("，", "。")  # most frequent first
    again = tmp_path / "again"
    assert train(W2V, again, poems, W2V_TINY) == 0
    assert torch.equal(load_file(str(again / "word2vec.safetensors"))["vectors"], tensors["vectors"])
    assert records(again) == records(w2v_run)


def test_word2vec_restarts_its_single_phase_after_a_kill(w2v_run, poems, tmp_path, monkeypatch, capsys):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, w2v_train, "train_word2vec", 1)
    assert train(W2V, killed, poems, W2V_TINY) == 130
    restore()
    capsys.readouterr()
    assert main(["train", "--resume", str(killed)]) == 0
    assert "restarts its single phase from the beginning" in capsys.readouterr().out
    vectors = load_file(str(killed / "word2vec.safetensors"))["vectors"]
    assert torch.equal(vectors, load_file(str(w2v_run / "word2vec.safetensors"))["vectors"])


MLE_BASE = ["device=cpu", "mle.epochs=0", "eval.bleu_samples=0", "generator.hidden_dim=8"]


@pytest.fixture(scope="module")
def mle_run(w2v_run, poems, tmp_path_factory):
    run = tmp_path_factory.mktemp("mle") / "run"
    assert train(MLE, run, poems, [*MLE_BASE, f"init.embeddings={w2v_run}", "generator.emb_dim=16"]) == 0
    return run


def test_init_embeddings_from_a_word2vec_run(mle_run, w2v_run, poems, tmp_path, capsys):
    run = mle_run
    base = [*MLE_BASE, f"init.embeddings={w2v_run}"]
    emb = load_file(str(run / "generator_mle.safetensors"))["model.generator.embedding.weight"]
    doc = json.loads((w2v_run / "word2vec.json").read_text(encoding="utf-8"))
    vectors = load_file(str(w2v_run / "word2vec.safetensors"))["vectors"]
    tokens = json.loads((run / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    index = {w: i for i, w in enumerate(doc["words"])}
    copied = [(i, index[t]) for i, t in enumerate(tokens) if t in index]
    assert len(copied) == len(tokens) - 4  # every token but the specials
    assert torch.equal(emb[[i for i, _ in copied]], vectors[[j for _, j in copied]])
    assert train(MLE, tmp_path / "bad", poems, [*base, "generator.emb_dim=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vectors of width 16" in err and "generator 8" in err


# --------------------------------------------------------------------------- Skip-Thought
def test_triples_are_consecutive_clauses_and_sentences():
    assert neighbour_units("床 前 明 月 光 ， 疑 是 地 上 霜 。 举 头 望 明 月 ， 低 头 思 故 乡 。", "clauses") == [
        "床 前 明 月 光 ，", "疑 是 地 上 霜 。", "举 头 望 明 月 ，", "低 头 思 故 乡 。"]
    units, triples = triples_of(["One. Two here. Three now. Four.", "Alone."], "sentences")
    assert units[:4] == ["One.", "Two here.", "Three now.", "Four."] and triples == [(0, 1, 2), (1, 2, 3)]


def test_skipthought_trains_and_encodes_normalised_vectors(st_run, poems):
    recs = records(st_run)
    assert [r["epoch"] for r in recs] == [1, 2] and recs[1]["train_loss"] < recs[0]["train_loss"]
    trained = load_file(str(st_run / "skipthought.safetensors"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(0, "init:encoder"))
        fresh = SkipThought(trained["model.encoder.embedding.weight"].shape[0], 16, 16)
    for name, value in fresh.state_dict().items():
        if name.endswith("weight") or "weight_" in name:
            assert not torch.equal(value, trained[f"model.encoder.{name}"]), name  # every weight moved
    encoder = load_encoder(st_run)
    texts = (poems / "test.txt").read_text(encoding="utf-8").splitlines()[:20]
    x = encoder.embed(texts)
    assert x.shape == (20, 16) and np.allclose(np.linalg.norm(x, axis=1), 1.0)
    assert np.allclose(encoder.embed(texts[:3]), x[:3], atol=1e-6)  # batching does not change a vector


def test_vocabulary_expansion_replaces_only_unknown_positions(st_run, poems):
    from seqgan_kit.data.corpus import encode_examples

    encoder = load_encoder(st_run)
    texts = ["☃" + (poems / "test.txt").read_text(encoding="utf-8").splitlines()[0][:5], "☃☃"]
    plain = encoder.embed(texts)
    snow = np.linspace(-1, 1, 16)

    class Expansion:  # the least-squares map is tested on its own; here only where its vectors go
        def vector(self, token):
            return snow if token == "☃" else None

    encoder.expansion = Expansion()
    expanded = encoder.embed(texts)
    tokens = [encoder.tokenize(t) for t in texts]
    rows, _ = encode_examples(tokens, encoder.vocab, encoder.cfg.data.max_tokens)  # [2, T]
    with torch.no_grad():
        for i, toks in enumerate(tokens):
            ids = rows[i : i + 1, : len(toks) + 1]  # [1, t]
            emb = encoder.model.embedding(ids)  # [1, t, E]
            emb[0, [p for p, tok in enumerate(toks) if tok == "☃"]] = torch.as_tensor(snow, dtype=emb.dtype)
            h = encoder.model.encode_embedded(emb, torch.tensor([len(toks) + 1]), normalize=False)  # [1, C]
            ref = torch.nn.functional.normalize(h - encoder.center, dim=1).double().numpy()
            np.testing.assert_allclose(expanded[i], ref[0], atol=1e-6)
    assert not np.allclose(plain, expanded, atol=1e-6)


def test_skipthought_stores_the_mean_training_vector_and_the_encoder_subtracts_it(st_run, poems):
    from seqgan_kit.data.corpus import encode_examples

    encoder = load_encoder(st_run)
    lines = (poems / "train.txt").read_text(encoding="utf-8").splitlines()
    units, _ = triples_of(lines, "clauses")
    rows, _ = encode_examples([encoder.tokenize(u) for u in units], encoder.vocab, encoder.cfg.data.max_tokens)
    assert len(units) < 5000  # every unit is in the mean
    with torch.no_grad():  # the obvious reference: every unit in one batch, corpus order, full width
        mean = encoder.model.encode(rows, normalize=False).double().mean(dim=0)  # [N, C] -> [C]
    assert encoder.describe()["centred"] and encoder.center.shape == (16,)
    torch.testing.assert_close(encoder.center.double(), mean, atol=1e-6, rtol=0)
    texts = (poems / "test.txt").read_text(encoding="utf-8").splitlines()[:4]
    ids, _ = encode_examples([encoder.tokenize(t) for t in texts], encoder.vocab, encoder.cfg.data.max_tokens)
    with torch.no_grad():
        h = encoder.model.encode(ids, normalize=False)  # [4, C]
    ref = torch.nn.functional.normalize(h - encoder.center, dim=1).double().numpy()
    np.testing.assert_allclose(encoder.embed(texts), ref, atol=1e-6)


def test_skipthought_resumes_exactly_after_a_kill(st_run, poems, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, SkipThoughtTrainer, "step", 9)  # 6 steps per epoch: dies in epoch 2
    assert train(ST, killed, poems, ST_TINY) == 130
    restore()
    assert [r["epoch"] for r in records(killed)] == [1]
    assert main(["train", "--resume", str(killed)]) == 0
    assert records(killed) == records(st_run)
    a, b = load_file(str(killed / "skipthought.safetensors")), load_file(str(st_run / "skipthought.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_decoders_share_embedding_and_output_and_recurrent_init_is_orthogonal():
    torch.manual_seed(0)
    model = SkipThought(30, 8, 12)
    names = [n for n, _ in model.named_parameters()]
    assert [n for n in names if "embedding" in n] == ["embedding.weight"]
    assert [n for n in names if n.startswith("output")] == ["output.weight", "output.bias"]
    rows = torch.tensor([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]])
    ctx = model.encode(rows, normalize=False)
    for decoder in (model.decoder_prev, model.decoder_next):
        model.zero_grad()
        loss, _ = model._decode_loss(decoder, ctx.detach(), rows)
        loss.backward()
        assert model.output.weight.grad.abs().sum() > 0 and model.embedding.weight.grad.abs().sum() > 0
    for gru in model.grus():
        h = gru.hidden_size
        for block in gru.weight_hh_l0.detach().split(h):
            assert torch.allclose(block @ block.T, torch.eye(h), atol=1e-5)
        assert gru.weight_ih_l0.abs().max() <= 0.1 and gru.bias_hh_l0.abs().max() == 0
    assert model.embedding.weight.abs().max() <= 0.1


def test_bi_skip_concatenates_a_backward_encoder():
    torch.manual_seed(0)
    model = SkipThought(30, 8, 6, bidirectional=True, conditioning="bias")
    rows = torch.tensor([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]])
    v = model.encode(rows, normalize=False)
    assert v.shape == (2, 12)
    emb = model.embedding(torch.tensor([[2, 9, 8]]))  # the second row reversed: EOS, 9, 8
    _, h = model.encoder_bw(emb)
    assert torch.allclose(v[1, 6:], h[0, 0], atol=1e-6)
    assert torch.isfinite(model(rows, rows, rows))


def test_skipthought_needs_a_corpus_with_neighbours(poems, tmp_path, capsys):
    assert train(ST, tmp_path / "r", poems, [*ST_TINY, "data.neighbours="]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.neighbours" in err


# --------------------------------------------------------------------------- evaluation commands
def test_fed_novelty_and_encode_commands(w2v_run, st_run, poems, capsys):
    train_file, test_file = poems / "train.txt", poems / "test.txt"
    assert main(["eval", "fed", "--encoder", str(w2v_run), "--hyp", str(test_file), "--ref", str(train_file),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fed"] > 0 and out["n_hyp"] == 60 and out["encoder"]["pooling"] == "sif"
    assert main(["eval", "fed", "--encoder", str(w2v_run), "--hyp", str(train_file), "--ref", str(train_file),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fed"] < 1e-9
    assert main(["eval", "novelty", "--encoder", str(st_run), "--hyp", str(train_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copy_rate"] == 1.0 and out["n"] == 300
    assert main(["eval", "embsim", "--encoder", str(w2v_run), "--hyp", str(test_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["embsim"] < 0 and out["top_k"] == len(json.loads((w2v_run / "word2vec.json").read_text())["words"]) // 10
    first = train_file.read_text(encoding="utf-8").splitlines()[0]
    assert main(["encode", str(w2v_run), "--nearest", first, "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip().startswith("1.0000") and first in lines[1]


def test_sweep_reports_fed_at_every_temperature(mle_run, w2v_run, capsys):
    assert main(["eval", "sweep", str(mle_run), "--temperatures", "0.5,1", "-n", "20", "--encoder", str(w2v_run),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    records = result["runs"]["run"]
    assert [r["temperature"] for r in records] == [0.5, 1.0] and all(r["fed"] >= 0 for r in records)
    assert result["fed"]["encoder"]["kind"] == "word2vec" and result["fed"]["n_ref"] == 60


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "seqgan_kit", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    return proc.returncode, proc.stderr.strip()


@pytest.mark.slow
def test_cli_bad_inputs_are_one_line_errors(w2v_run, poems, tmp_path, capsys):
    train_file = poems / "train.txt"
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9\n".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    english = tmp_path / "english.txt"
    english.write_text("\n".join(f"the president said {i} things about the economy" for i in range(40)) + "\n")
    few = tmp_path / "few.txt"
    few.write_text("\n".join(train_file.read_text(encoding="utf-8").splitlines()[:10]) + "\n", encoding="utf-8")
    cases = [  # each subprocess costs seconds (torch import): two here, the rest in process below
        (["--hyp", binary, "--ref", train_file], "not UTF-8"),
        (["--hyp", empty, "--ref", train_file], "empty"),
    ]
    for extra, message in cases:
        code, err = run_cli("eval", "fed", "--encoder", w2v_run, *extra)
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    for extra, message in [(["--hyp", english, "--ref", train_file], "another corpus or tokenizer"),
                           (["--hyp", few, "--ref", train_file], "FED needs at least 17")]:
        assert main(["eval", "fed", "--encoder", str(w2v_run), *map(str, extra)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_more_bad_inputs_in_process(w2v_run, poems, tmp_path, capsys):
    train_file = poems / "train.txt"
    few = tmp_path / "few.txt"
    few.write_text("\n".join(train_file.read_text(encoding="utf-8").splitlines()[:10]) + "\n", encoding="utf-8")
    assert main(["eval", "fed", "--encoder", str(w2v_run), "--hyp", str(few), "--ref", str(train_file),
                 "--eps", "1e-6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["eps"] == 1e-6
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('task = "text"\n[data]\nname = "obama_speech"\ntokenizer = "sentencepiece"\n')
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n\n", encoding="utf-8")
    gap = tmp_path / "gap.txt"  # an empty sample among sentences is left out, and the command says so
    gap.write_text("\n".join(train_file.read_text(encoding="utf-8").splitlines()[:3] + [""]) + "\n", encoding="utf-8")
    assert main(["eval", "novelty", "--encoder", str(w2v_run), "--hyp", str(gap), "--json"]) == 0
    captured = capsys.readouterr()
    assert "left out 1 empty line(s) of 4" in captured.err and json.loads(captured.out)["n"] == 3
    for args, message in [
        (["eval", "fed", "--encoder", str(w2v_run), "--hyp", str(few), "--ref", str(train_file), "--hyp-run",
          str(other)], "corpus 'obama_speech'"),
        (["eval", "novelty", "--encoder", str(w2v_run), "--hyp", str(blank)], "no sentence (only empty lines)"),
        (["eval", "fed", "--encoder", str(tmp_path), "--hyp", str(few), "--ref", str(few)], "not a run directory"),
    ]:
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


# --------------------------------------------------------------------------- eval encoder
@pytest.mark.slow
def test_eval_encoder_checks_skipthought_beside_word2vec_sif_on_the_same_triples(st_run, w2v_run, capsys):
    assert main(["eval", "encoder", str(st_run), "--baseline", str(w2v_run), "-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    st, w2v = out["results"]
    assert out["corpus"] == "poetry_quatrain5" and out["split"] == "test" and out["n_examples"] == 60
    assert out["n_triples_in_split"] == 120  # 60 poems x (4 clauses - 2)
    assert st["encoder"]["kind"] == "skipthought" and w2v["encoder"]["pooling"] == "sif"
    for r in (st, w2v):
        assert r["n"] == 60 and -1 <= r["mean_pairwise_cosine"] <= 1 and 0 < r["top_pc_share"] <= 1
        ret = r["retrieval"]
        assert ret["k"] == 5 and ret["n_triples"] == 120 and 0 <= ret["top1"] <= ret["mrr"] <= 1
        assert r["fed_shuffle"]["n_hyp"] == 60 and r["fed_shuffle"]["ratio"] > 0
    assert w2v["fed_shuffle"]["ratio"] == pytest.approx(1.0)  # SIF pooling is a bag of words
    assert main(["eval", "encoder", str(st_run), "-k", "5", "--no-fed", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "next-unit top-1 of 5" in text and "FED ratio" not in text


def test_eval_encoder_bad_inputs_are_one_line_errors_before_any_work(st_run, w2v_run, tmp_path, capsys):
    mle = tmp_path / "mle"
    mle.mkdir()
    (mle / "config.toml").write_text('algorithm = "mle"\ntask = "text"\n')
    for args, message in [
        ([str(tmp_path / "missing")], "encoder run directory not found"),
        ([str(mle)], "not an encoder run"),
        ([str(st_run), "--split", "valid"], "--split must be one of test, train"),
        ([str(st_run), "-k", "1"], "-k must be at least 2"),
        ([str(st_run), "--distractors", "hard"], "--distractors must be one of random, same-position"),
        ([str(st_run), "--shuffle-rate", "1.5"], "--shuffle-rate must be in (0, 1]"),
        ([str(st_run), "--baseline", str(st_run)], "--baseline needs a word2vec run"),
        ([str(st_run), "-k", "500"], "too few for -k 500"),
    ]:
        assert main(["eval", "encoder", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("seqgan-kit: error:") and message in err, err
