"""`eval sweep`: quality–diversity records against direct bleu/self_bleu calls, plot, table, CLI and bad input.

A fake model stands in for TextModel: at temperature T it cycles through the first k(T) sentences of a fixed
list (k(0) = 1, greedy; k grows with T), so diversity rises with temperature in a known way.
"""

import json

import pytest

from seqgan_kit.cli import main
from seqgan_kit.cli import sweep as sweep_cli
from seqgan_kit.errors import UserError
from seqgan_kit.metrics import sweep
from seqgan_kit.metrics.bleu import bleu, self_bleu
from seqgan_kit.metrics.sweep import (
    check_references,
    format_table,
    plot_sweep,
    quality_diversity,
    reference_coverage,
)
from seqgan_kit.metrics.text import read_sentences

SENTENCES = [
    "The cat sat on the mat today",
    "A dog ran in the park with a ball",
    "Two birds fly over the green hills",
    "The man rides a horse on the beach",
    "A woman holds an umbrella in the rain",
    "The cat sleeps on a red chair",
    "A train stops at the old station",
    "Children play football in the park",
]
REFERENCES = [
    "the cat sat on the red mat",
    "a dog runs in the park",
    "birds fly over green hills at dawn",
    "a man rides a brown horse on the beach",
    "the train stops at the station",
]
CHINESE = ["白 日 依 山 尽 ， 黄 河 入 海 流 。", "欲 穷 千 里 目 ， 更 上 一 层 楼 。"]


class FakeModel:
    """Deterministic stand-in for TextModel; eval tokens are lower-cased words (so the sweep must use them)."""

    def __init__(self, name="mle", corpus="toy", fingerprint="v1", bleu_orders=(2, 3), vocab=True,
                 sentences=SENTENCES):
        self.name, self.corpus, self.vocab_fingerprint = name, corpus, fingerprint
        self.bleu_orders = list(bleu_orders)
        self.sentences = list(sentences)
        if vocab:
            self.vocab_tokens = {tok for s in self.eval_tokens(self.sentences) for tok in s}
        self.calls = []

    def sample_text(self, n, temperature=1.0, seed=0):
        self.calls.append((n, temperature, seed))
        k = 1 if temperature == 0 else min(len(self.sentences), 1 + round(4 * temperature))
        return [self.sentences[(seed + i) % k] for i in range(n)]

    def eval_tokens(self, texts):
        return [t.lower().split() for t in texts]

    def read_references(self, path=None, limit=None):
        if path is None:
            return [s.split() for s in REFERENCES][:limit]
        return self.eval_tokens([" ".join(s) for s in read_sentences(path, "whitespace", limit)])


REFS = [s.split() for s in REFERENCES]


def test_records_match_direct_bleu_and_self_bleu():
    model = FakeModel()
    records = quality_diversity(model, REFS, [0, 0.5, 1.0, 1.5], n=12, orders=[3, 2], seed=1)
    assert [r["temperature"] for r in records] == [0.0, 0.5, 1.0, 1.5]
    assert [c[1:] for c in model.calls] == [(0, 1), (0.5, 1), (1.0, 1), (1.5, 1)]
    for r in records:
        tokens = model.eval_tokens(model.sample_text(12, r["temperature"], seed=1))
        assert r["bleu"] == {str(n): v for n, v in bleu(tokens, REFS, orders=[2, 3]).items()}
        assert r["self_bleu"] == {str(n): v for n, v in self_bleu(tokens, orders=[2, 3]).items()}
        assert r["mean_len"] == pytest.approx(sum(map(len, tokens)) / 12)
        assert r["n_samples"] == r["n_self_bleu"] == 12
    assert [r["distinct"] for r in records] == [1 / 12, 3 / 12, 5 / 12, 7 / 12]
    greedy = records[0]
    assert greedy["self_bleu"] == {"2": 1.0, "3": 1.0}  # temperature 0: every sample the same sentence
    assert [r["self_bleu"]["2"] for r in records] == sorted((r["self_bleu"]["2"] for r in records), reverse=True)
    assert json.loads(json.dumps(records)) == records  # str order keys: JSON round trip is exact


def test_references_indexed_once(monkeypatch):
    built = []

    class Counting(sweep.BleuReferences):
        def __init__(self, *args, **kwargs):
            built.append(kwargs.get("max_order"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sweep, "BleuReferences", Counting)
    quality_diversity(FakeModel(), REFS, [0.5, 1.0, 1.5], n=4, orders=[2, 4])
    assert built == [4]


def test_self_bleu_on_first_samples_only():
    model = FakeModel()
    (r,) = quality_diversity(model, REFS, [1.5], n=10, orders=[2], self_bleu_samples=4)
    tokens = model.eval_tokens(model.sample_text(10, 1.5))
    assert r["n_self_bleu"] == 4 and r["n_samples"] == 10
    assert r["self_bleu"]["2"] == self_bleu(tokens[:4], 2)
    assert r["bleu"]["2"] == bleu(tokens, REFS, 2)
    (r,) = quality_diversity(model, REFS, [1.5], n=10, orders=[2], self_bleu_samples=50)
    assert r["n_self_bleu"] == 10 and r["self_bleu"]["2"] == self_bleu(tokens, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 1}, "at least 2 samples"),
    ({"temperatures": [1.0, -0.5]}, "temperatures must be"),
    ({"temperatures": [float("nan")]}, "temperatures must be"),
    ({"temperatures": []}, "no temperatures"),
    ({"orders": []}, "no BLEU orders"),
    ({"self_bleu_samples": 1}, "self_bleu_samples"),
])
def test_quality_diversity_rejects_bad_arguments(kwargs, message):
    args = {"temperatures": [1.0], "n": 4, "orders": [2]} | kwargs
    with pytest.raises(ValueError, match=message):
        quality_diversity(FakeModel(), REFS, **args)


def _curves():
    return {"mle": quality_diversity(FakeModel(), REFS, [0, 0.5, 1.0], n=8, orders=[2, 3]),
            "seqgan": quality_diversity(FakeModel("seqgan", sentences=SENTENCES[::-1]), REFS, [0.5, 1.0],
                                        n=8, orders=[2, 3])}


def test_plot_is_a_png_written_atomically(tmp_path):
    curves = _curves()
    for order in (2, 3):
        plot_sweep(curves, order, tmp_path / f"sweep_bleu{order}.png")
    for order in (2, 3):
        data = (tmp_path / f"sweep_bleu{order}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep_bleu2.png", "sweep_bleu3.png"]


def test_table_plain_and_markdown():
    curves = _curves()
    lines = format_table(curves).splitlines()
    assert lines[0].split() == ["run", "T", "BLEU-2", "BLEU-3", "Self-BLEU-2", "Self-BLEU-3", "len", "distinct"]
    assert len(lines) == 1 + 3 + 2
    first = curves["mle"][0]
    assert lines[1].split() == ["mle", "0", f"{first['bleu']['2']:.4f}", f"{first['bleu']['3']:.4f}",
                                "1.0000", "1.0000", f"{first['mean_len']:.1f}", "0.125"]
    assert lines[-1].split()[:2] == ["seqgan", "1"]
    assert len({len(line) for line in lines[:2]}) == 1  # aligned columns
    md = format_table(curves, orders=[2], markdown=True).splitlines()
    assert md[0] == "| run | T | BLEU-2 | Self-BLEU-2 | len | distinct |"
    assert md[1].startswith("| --- | ---: |") and len(md) == 2 + 5


def _point(t, self_b, b):
    return {"temperature": t, "bleu": {"2": b}, "self_bleu": {"2": self_b}}


def test_gap_to_the_baseline_curve_by_hand():
    mle = [_point(0.5, 0.9, 0.8), _point(1.0, 0.7, 0.6), _point(1.5, 0.5, 0.3)]
    gan = [_point(0.5, 0.95, 0.9), _point(1.0, 0.8, 0.75), _point(1.5, 0.6, 0.4), _point(2.0, 0.5, 0.3)]
    assert sweep.curve_bleu(mle, 0.8, 2) == pytest.approx(0.7)
    assert sweep.curve_bleu(mle, 0.6, 2) == pytest.approx(0.45)
    assert sweep.curve_bleu(mle, 0.4, 2) is None and sweep.curve_bleu(mle, 0.95, 2) is None
    gaps = sweep.gaps_to_baseline({"mle": mle, "gan": gan}, [2])
    assert list(gaps) == ["gan"]
    got = [(r["temperature"], r["gap"]["2"]) for r in gaps["gan"]]
    assert got[0] == (0.5, None)  # Self-BLEU 0.95 lies beyond the MLE curve's range
    assert got[1][1] == pytest.approx(0.05) and got[2][1] == pytest.approx(-0.05)
    assert got[3][1] == pytest.approx(0.0)  # exactly on the curve's end point
    table = sweep.format_gaps(gaps, "mle").splitlines()
    assert table[0].startswith("BLEU minus mle's curve")
    assert [row.split() for row in table[2:]] == [["gan", "0.5", "outside"], ["gan", "1", "+0.0500"],
                                                  ["gan", "1.5", "-0.0500"], ["gan", "2", "+0.0000"]]
    assert sweep.format_gaps({}, "mle") == ""


def test_reference_coverage_rule():
    model = FakeModel()
    assert reference_coverage([["the", "cat"], ["zebra"]], {"the", "cat"}) == pytest.approx(2 / 3)
    assert check_references(model, [s.lower().split() for s in SENTENCES], "own.txt") == 1.0
    with pytest.raises(UserError, match=r"chinese.txt: only 0% of the reference tokens occur in mle's vocabulary"):
        check_references(model, [s.split() for s in CHINESE], "chinese.txt")
    # No vocab_tokens: the tokens of samples at temperature 1 stand in for the vocabulary.
    novocab = FakeModel(vocab=False)
    assert check_references(novocab, REFS, "refs.txt", n=8) == pytest.approx(
        reference_coverage(REFS, {t for s in novocab.eval_tokens(SENTENCES[:5]) for t in s}))
    assert novocab.calls == [(8, 1.0, 0)]
    with pytest.raises(UserError, match="5 samples at temperature 1"):
        check_references(novocab, [s.split() for s in CHINESE], "chinese.txt", n=5)


# --- the CLI, with sweep_cli.load_model (the one seam) replaced by a table of fake runs ----------------------

RUNS = {
    "runs/mle": FakeModel("mle"),
    "runs/seqgan": FakeModel("seqgan", bleu_orders=(3,), sentences=SENTENCES[::-1]),
    "other/mle": FakeModel("mle"),
    "runs/poem": FakeModel("poem", corpus="poetry_quatrain5", sentences=CHINESE),
    "runs/bigvocab": FakeModel("bigvocab", fingerprint="v2"),
    "runs/novocab": FakeModel("novocab", vocab=False),
}


@pytest.fixture(autouse=True)
def fake_runs(monkeypatch):
    def load(path):
        if path not in RUNS:
            raise UserError(f"{path}: not a text run")
        return RUNS[path]

    monkeypatch.setattr(sweep_cli, "load_model", load)


def run_json(capsys, argv):
    assert main(["eval", "sweep"] + argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_cli_json_two_runs_on_one_corpus(capsys):
    result = run_json(capsys, ["runs/mle", "runs/seqgan", "--temperatures", "1, 0,0.5,1.0", "-n", "6"])
    assert result["temperatures"] == [0.0, 0.5, 1.0]
    assert result["orders"] == [2, 3]  # the union of the runs' own orders
    assert result["references"] == {"source": "test split of runs/mle", "n": 5, "coverage": None}
    assert result["corpus"] == "toy" and result["n"] == 6 and result["seed"] == 0
    assert list(result["runs"]) == ["mle", "seqgan"]
    for label, path in (("mle", "runs/mle"), ("seqgan", "runs/seqgan")):
        assert result["runs"][label] == quality_diversity(RUNS[path], REFS, [0, 0.5, 1], 6, [2, 3])


def test_cli_ref_file_orders_and_sample_fallback(tmp_path, capsys):
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    result = run_json(capsys, ["runs/novocab", "--ref", str(ref), "--max-ref", "3", "--orders", "4,2",
                               "--temperatures", "0.5,1.5", "-n", "5", "--self-bleu-samples", "3", "--seed", "2"])
    assert result["orders"] == [2, 4] and result["self_bleu_samples"] == 3
    refs = REFS[:3]
    assert result["references"]["n"] == 3 and result["references"]["coverage"] == pytest.approx(
        check_references(FakeModel(vocab=False), refs, "r", n=5, seed=2))
    assert result["runs"]["novocab"] == quality_diversity(FakeModel(vocab=False), refs, [0.5, 1.5], 5, [2, 4],
                                                           seed=2, self_bleu_samples=3)


def test_cli_table_and_out_dir(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["eval", "sweep", "runs/mle", "runs/seqgan", "--temperatures", "0,1", "-n", "4",
                 "--orders", "2", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out.splitlines()
    assert stdout[0].startswith("4 samples per temperature (seed 0) from each of 2 run(s) of toy")
    assert stdout[1].split() == ["run", "T", "BLEU-2", "Self-BLEU-2", "len", "distinct"]
    assert [line.split()[:2] for line in stdout[2:6]] == [["mle", "0"], ["mle", "1"], ["seqgan", "0"],
                                                           ["seqgan", "1"]]
    assert stdout[6].startswith("BLEU minus mle's curve at the same Self-BLEU")
    assert stdout[7].split() == ["run", "T", "BLEU-2", "gap"] and [r.split()[:2] for r in stdout[8:10]] == [
        ["seqgan", "0"], ["seqgan", "1"]]
    assert stdout[10:] == [f"wrote {out / name}" for name in ("sweep.json", "sweep.md", "sweep_bleu2.png")]
    saved = json.loads((out / "sweep.json").read_text())
    assert list(saved["gap_to_first"]) == ["seqgan"]
    assert saved["runs"]["mle"] == quality_diversity(RUNS["runs/mle"], REFS, [0, 1], 4, [2])
    md = (out / "sweep.md").read_text()
    assert "| mle | 0 |" in md and "![BLEU-2 vs Self-BLEU-2](sweep_bleu2.png)" in md
    assert (out / "sweep_bleu2.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_runs_sharing_a_name_are_labelled_by_path(capsys):
    result = run_json(capsys, ["runs/mle", "other/mle", "--temperatures", "1", "-n", "3", "--orders", "2"])
    assert list(result["runs"]) == ["runs/mle", "other/mle"]


def test_cli_labels_given_as_label_equals_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for d in ("runs/mle", "other/mle"):
        (tmp_path / d).mkdir(parents=True)
    result = run_json(capsys, ["LSTM MLE=runs/mle", "GAN=other/mle", "--temperatures", "1", "-n", "3",
                               "--orders", "2"])
    assert list(result["runs"]) == ["LSTM MLE", "GAN"]
    assert result["run_dirs"] == {"LSTM MLE": "runs/mle", "GAN": "other/mle"}
    assert list(result["gap_to_first"]) == ["GAN"]
    # no label where the part after '=' does not exist: the whole argument is the path
    assert main(["eval", "sweep", "x=runs/none", "-n", "3"]) == 2
    assert "x=runs/none: not a text run" in capsys.readouterr().err
    assert main(["eval", "sweep", "A=runs/mle", "A=other/mle", "-n", "3"]) == 2
    assert "share the label 'A'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["runs/mle", "--temperatures", "0.5,abc"], "--temperatures: 'abc' is not a number"),
    (["runs/mle", "--temperatures=-0.5,1"], "--temperatures must be finite and >= 0 (0 = greedy), got -0.5"),
    (["runs/mle", "--temperatures", "nan"], "--temperatures must be finite"),
    (["runs/mle", "--temperatures", "0.5,,1"], "--temperatures takes a comma-separated list"),
    (["runs/mle", "-n", "1"], "-n must be at least 2"),
    (["runs/mle", "--orders", "0"], "--orders must be in 1..9, got 0"),
    (["runs/mle", "--orders", "2,x"], "--orders: 'x' is not an integer"),
    (["runs/mle", "--max-ref", "0"], "--max-ref must be at least 1"),
    (["runs/mle", "--self-bleu-samples", "1"], "--self-bleu-samples must be at least 2"),
    (["runs/mle", "runs/nope"], "runs/nope: not a text run"),
    (["runs/mle", "runs/poem"],
     "runs/poem was trained on poetry_quatrain5, runs/mle on toy: a sweep compares runs of one corpus"),
    (["runs/mle", "runs/bigvocab"], "but with different vocabularies (v2 vs v1)"),
    (["runs/mle", "runs/mle"], "runs/mle is given twice"),
    (["runs/mle", "--ref", "missing.txt"], "file not found: missing.txt"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys):
    small = [] if "-n" in argv else ["-n", "4"]
    assert main(["eval", "sweep"] + argv + small) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("seqgan-kit: error: ") and captured.err.count("\n") == 1
    assert message in captured.err


@pytest.mark.parametrize("run", ["runs/mle", "runs/novocab"])
def test_cli_rejects_references_from_another_corpus(tmp_path, capsys, run):
    ref = tmp_path / "poems.txt"
    ref.write_text("\n".join(CHINESE) + "\n", encoding="utf-8")
    assert main(["eval", "sweep", run, "--ref", str(ref), "-n", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{ref}: only 0% of the reference tokens occur in" in err and "references from another corpus?" in err
