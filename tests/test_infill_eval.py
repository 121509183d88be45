"""MaskGAN's evaluation measures: `eval distinct` (% unique n-grams) and `eval infill` (masked NLL, accuracy, BLEU)."""

import json
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from sacrebleu.metrics import BLEU

from seqgan_kit.cli import main
from seqgan_kit.infill.scoring import eval_present, score_fills
from seqgan_kit.metrics.corpus_bleu import corpus_bleu
from seqgan_kit.metrics.infill import (
    distinct_ngrams,
    masked_nll,
    masked_runs,
    masked_spans,
    ngram_counts,
    token_accuracy,
)
from seqgan_kit.models.maskgan import MaskGANGenerator
from seqgan_kit.models.masks import MaskSpec, build_present, parse_mask
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.runs.textmodel import TextModel

from .tiny import RECIPE

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: thousands of tiny ops run faster on one thread


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def one_line_error(capsys, argv, message):
    assert main(argv) == 2, argv
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("seqgan-kit: error: "), captured
    assert captured.err.count("\n") == 1 and message in captured.err, (message, captured.err)


# --------------------------------------------------------------------------- distinct n-grams
def slow_distinct(sentences, n):
    grams = Counter(tuple(s[i:i + n]) for s in sentences for i in range(len(s) - n + 1))
    total = sum(grams.values())
    return len(grams), total, (100.0 * len(grams) / total if total else 0.0)


def test_distinct_ngrams_matches_a_counter_on_random_sentences():
    rng = random.Random(0)
    for trial in range(20):
        vocab = rng.randint(1, 8)
        sentences = [[f"w{rng.randrange(vocab)}" for _ in range(rng.randint(0, 9))] for _ in range(rng.randint(1, 30))]
        orders = [1, 2, 3, 4, 5, 9]
        counts, scores = ngram_counts(sentences, orders), distinct_ngrams(sentences, orders)
        assert list(scores) == orders
        for n in orders:
            distinct, total, pct = slow_distinct(sentences, n)
            assert counts[n] == (distinct, total), (trial, n)
            assert scores[n] == pytest.approx(pct, abs=1e-12)


def test_distinct_ngrams_hand_example():
    scores = distinct_ngrams([["a", "a", "a", "a"]], [2, 1, 5])
    assert list(scores) == [1, 2, 5]
    assert scores[1] == 25.0 and scores[2] == pytest.approx(100 / 3) and scores[5] == 0.0
    # pooled, not averaged per sentence: "a b" twice is 1 distinct bigram of 2
    assert distinct_ngrams([["a", "b"], ["a", "b"], ["c"]], [1, 2]) == {1: 60.0, 2: 50.0}


def test_eval_distinct_cli(tmp_path, capsys):
    path = tmp_path / "samples.txt"
    path.write_text("a a a a\nthe cat sat\nthe cat ran\n", encoding="utf-8")
    assert main(["eval", "distinct", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["n_sentences"] == 3 and result["tokenize"] == "whitespace"
    assert set(result["distinct"]) == {"2", "3", "4"}
    # bigrams: (a a) x3, (the cat) x2, (cat sat), (cat ran): 4 distinct of 7
    assert result["distinct_ngrams"]["2"] == 4 and result["total_ngrams"]["2"] == 7
    assert result["distinct"]["2"] == pytest.approx(400 / 7)
    assert result["distinct"]["4"] == 100.0 and result["total_ngrams"]["4"] == 1
    assert main(["eval", "distinct", str(path), "--n", "1", "--max-hyp", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 sentences" in out and "25.0000" in out and "1: 1/4" in out
    path.write_text("a b\n\nc d\n", encoding="utf-8")
    one_line_error(capsys, ["eval", "distinct", str(path)], "empty line")
    assert main(["eval", "distinct", str(path), "--allow-empty", "--n", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_sentences"] == 3 and result["distinct"] == {"2": 100.0}
    one_line_error(capsys, ["eval", "distinct", str(path), "--n", "10"], "--n must be in 1..9")


# --------------------------------------------------------------------------- masks
def test_parse_mask():
    assert parse_mask("prefix:6") == MaskSpec("prefix", 6) and str(parse_mask("prefix:6")) == "prefix:6"
    assert parse_mask("contiguous") == MaskSpec("contiguous") and str(parse_mask("random")) == "random"
    for bad in ("prefix:0", "prefix:", "prefix:-1", "prefix:2x", "prefix", "span", "Contiguous", ""):
        with pytest.raises(ValueError):
            parse_mask(bad)


def test_prefix_mask_and_keep_structure():
    full = torch.full((2,), 6)
    present = build_present(parse_mask("prefix:3"), full, 6, 0.5, seed=0)
    assert present.tolist() == [[True] * 3 + [False] * 3] * 2
    with pytest.raises(ValueError):
        build_present(parse_mask("prefix:6"), full, 6, 0.5, seed=0)
    torch.manual_seed(0)
    gen = MaskGANGenerator(vocab_size=30, seq_len=6, start_token=1, eos_token=2, pad_token=0, emb_dim=8, hidden_dim=8)
    rows = torch.tensor([[5, 6, 7, 2, 0, 0], [5, 6, 7, 8, 9, 2], [5, 2, 0, 0, 0, 0]])
    present = eval_present(gen, parse_mask("prefix:2"), rows, None, seed=0)
    assert present.tolist() == [[True, True, False, True, True, True], [True, True, False, False, False, True],
                                [True] * 6]
    # random masks with nothing kept: everything before EOS is masked, token 0 too; EOS/PAD never masked
    present = eval_present(gen, parse_mask("random"), rows, 0.0, seed=3)
    assert torch.equal(present, (rows == 2) | (rows == 0))
    # contiguous: int((1 - r) * L) tokens inside each sentence (L = 3, 5, 1 -> 1, 2, 0 at r = 0.5), token 0 kept
    present = eval_present(gen, parse_mask("contiguous"), rows, 0.5, seed=3)
    assert (~present).sum(1).tolist() == [1, 2, 0] and present[:, 0].all() and present[rows <= 2].all()
    # the same seed gives the same mask, another seed another one
    lengths = torch.full((64,), 12)
    a = build_present(parse_mask("contiguous"), lengths, 12, 0.5, seed=1)
    assert torch.equal(a, build_present(parse_mask("contiguous"), lengths, 12, 0.5, seed=1))
    assert not torch.equal(a, build_present(parse_mask("contiguous"), lengths, 12, 0.5, seed=2))
    assert a[:, 0].all() and ((~a).sum(1) == 6).all()


def test_masked_runs():
    assert masked_runs([True, False, False, True, False]) == [(1, 3), (4, 5)]
    assert masked_runs([True, True]) == [] and masked_runs([False]) == [(0, 1)]


# --------------------------------------------------------------------------- measures
def test_masked_nll_equals_a_loop_over_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g)
    targets = torch.randint(1, 7, (3, 5), generator=g)
    logits[..., 0] = float("-inf")  # a banned token, never a target
    present = torch.rand(3, 5, generator=g) < 0.4
    present[0] = True  # a row with nothing masked
    total, count = masked_nll(logits, targets, present)
    slow, n = 0.0, 0
    for i in range(3):
        for t in range(5):
            if not present[i, t]:
                slow -= torch.log_softmax(logits[i, t].double(), -1)[targets[i, t]].item()
                n += 1
    assert count == n == int((~present).sum()) and n > 0
    assert total == pytest.approx(slow, rel=1e-12)
    assert masked_nll(logits, targets, torch.ones_like(present)) == (0.0, 0)
    assert total / count == pytest.approx(F.cross_entropy(logits[~present], targets[~present]).item(), rel=1e-5)


def test_spans_and_token_accuracy_hand_example():
    real = torch.tensor([[4, 5, 6, 7, 2], [4, 8, 9, 2, 0]])
    filled = torch.tensor([[4, 5, 9, 7, 2], [4, 8, 9, 2, 0]])
    present = torch.tensor([[True, False, False, True, True], [True, True, False, True, True]])
    hyps, refs = masked_spans(filled, real, present)
    assert hyps == [[5, 9], [9]] and refs == [[5, 6], [9]]
    assert token_accuracy(filled, real, present) == pytest.approx(200 / 3)
    assert token_accuracy(filled, real, torch.ones_like(present)) == 0.0
    assert masked_spans(filled, real, torch.ones_like(present)) == ([[], []], [[], []])


def test_corpus_bleu_orders():
    hyps = [["a", "b", "c", "d"], ["e", "f", "a", "b", "x"], ["c", "d", "e"]]
    refs = [["a", "b", "c", "x"], ["e", "f", "a", "b", "c"], ["c", "d", "f"]]
    for n in (2, 3):
        direct = BLEU(tokenize="none", force=True, max_ngram_order=n).corpus_score(
            [" ".join(h) for h in hyps], [[" ".join(r) for r in refs]])
        assert corpus_bleu(hyps, refs, max_order=n).score == pytest.approx(direct.score, abs=1e-12)
    assert corpus_bleu(hyps, refs).score == corpus_bleu(hyps, refs, max_order=4).score
    assert corpus_bleu(hyps, refs, max_order=2).score > corpus_bleu(hyps, refs, max_order=4).score
    for n in (2, 3, 4):
        assert corpus_bleu(refs, refs, max_order=n).score == pytest.approx(100.0)


# --------------------------------------------------------------------------- eval infill on a tiny run
WORDS = "a man dog sits on the red bench near park with two cats".split()
TEXT = ["data.card=", "data.name=toy", "data.tokenizer=whitespace", "data.max_tokens=10", "generator.emb_dim=8",
        "generator.hidden_dim=8", "mle.epochs=1", "eval.bleu_samples=10", "eval.bleu_references=10", "device=cpu",
        "eval.batch_size=8"]


def no_plot(self):
    """Curves are not what this file tests."""


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    """A tiny MaskGAN text run (60 test sentences) and a tiny MLE text run on the same corpus."""
    root = tmp_path_factory.mktemp("infill")
    corpus = root / "corpus"
    corpus.mkdir()
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (int(n),), generator=g).tolist())
             for n in torch.randint(3, 10, (160,), generator=g)]
    (corpus / "train.txt").write_text("\n".join(lines[:100]) + "\n")
    (corpus / "test.txt").write_text("\n".join(lines[100:]) + "\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunDir, "plot", no_plot)
        maskgan = root / "maskgan"
        recipe = str(RECIPE).replace("synthetic_mle", "coco_maskgan")
        assert main(["train", recipe, "--run-dir", str(maskgan),
                     *sets(TEXT + [f"data.dir={corpus}", "maskgan.mask_mle_steps=2", "maskgan.steps=1",
                                   "maskgan.batch_size=8"])]) == 0
        mle = root / "mle"
        assert main(["train", recipe.replace("maskgan", "mle"), "--run-dir", str(mle),
                     *sets(TEXT + [f"data.dir={corpus}"])]) == 0
    torch.set_num_threads(threads)
    return maskgan, mle, lines[100:]


def infill_json(capsys, argv):
    capsys.readouterr()
    assert main(["eval", "infill", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_eval_infill_json(text_runs, capsys):
    run, _, _ = text_runs
    result = infill_json(capsys, [str(run), "-n", "40", "--examples", "3"])
    assert result["rows"] == 40 and result["scored_rows"] + result["dropped_rows"] == 40
    assert result["scored_rows"] > 20 and result["masked_tokens"] >= result["scored_rows"]
    assert result["mask"] == "contiguous" and result["rate"] == 0.5  # the run's maskgan settings
    assert result["seed"] == 0 and result["temperature"] == 1.0 and result["truncated"] == 0
    assert result["masked_nll"] > 0 and result["masked_perplexity"] > 1
    assert result["masked_perplexity"] == pytest.approx(math.exp(result["masked_nll"]))
    assert result["lm_masked_perplexity"] == pytest.approx(math.exp(result["lm_masked_nll"]))
    # a tiny model: not much better than uniform over the 13 words (plus <unk>)
    assert result["masked_perplexity"] < 40
    assert 0 <= result["token_accuracy"] <= 100
    assert set(result["bleu"]) == {"2", "3", "4"} and all(0 <= v <= 100 for v in result["bleu"].values())
    assert result["bleu"]["2"] >= result["bleu"]["4"]
    assert len(result["examples"]) == 3
    for ex in result["examples"]:
        assert "___" in ex["context"] and ex["spans"]
        assert len(ex["original"].split()) == len(ex["fill"].split())
        assert all(len(s["original"].split()) == len(s["fill"].split()) for s in ex["spans"])
    # deterministic; another seed picks other rows, masks and fills
    assert infill_json(capsys, [str(run), "-n", "40", "--examples", "3"]) == result
    assert infill_json(capsys, [str(run), "-n", "40", "--seed", "1"])["masked_nll"] != result["masked_nll"]


def test_eval_infill_greedy_prefix_and_ref_file(text_runs, capsys, tmp_path):
    run, _, test_lines = text_runs
    greedy = infill_json(capsys, [str(run), "--mask", "prefix:2", "--temperature", "0", "--examples", "1"])
    assert greedy["rows"] == len(test_lines) and greedy["rate"] is None and greedy["mask"] == "prefix:2"
    # prefix:2 masks every token after the first two: all sentences have at least 3 tokens
    assert greedy["dropped_rows"] == 0
    lengths = sorted(len(line.split()) for line in test_lines)
    assert greedy["masked_tokens"] == sum(n - 2 for n in lengths)
    assert greedy == infill_json(capsys, [str(run), "--mask", "prefix:2", "--temperature", "0", "--examples", "1",
                                          "--seed", "0"])
    ex = greedy["examples"][0]
    assert ex["context"].endswith("___") and ex["fill"].split()[:2] == ex["original"].split()[:2]
    # --ref: the same sentences from a file give the same numbers
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(test_lines) + "\n\n")
    from_file = infill_json(capsys, [str(run), "--mask", "prefix:2", "--temperature", "0", "--examples", "1",
                                     "--ref", str(ref)])
    assert from_file["source"] == str(ref)
    assert {k: v for k, v in from_file.items() if k != "source"} == {k: v for k, v in greedy.items() if k != "source"}
    # random masks, -n above the split: all sentences, with a note
    result = infill_json(capsys, [str(run), "--mask", "random", "--rate", "0.3", "-n", "5000"])
    assert result["rows"] == len(test_lines) and result["rate"] == 0.3
    # the table
    assert main(["eval", "infill", str(run), "-n", "10", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "masked perplexity" in out and "BLEU-n" in out and "context:" in out


def test_eval_infill_bad_inputs_are_one_line_errors(text_runs, capsys, tmp_path):
    run, mle, _ = text_runs
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    (synthetic / "config.toml").write_text('task = "synthetic"\n')
    cases = [
        (["--mask", "span"], "unknown mask 'span'"),
        (["--mask", "prefix:0"], "K >= 1"),
        (["--mask", "prefix:11"], "K must be below 11"),
        (["--mask", "prefix:3", "--rate", "0.5"], "--rate does not apply"),
        (["--rate", "1"], "--rate (the fraction of tokens kept) must be in [0, 1)"),
        (["--rate", "-0.1"], "must be in [0, 1)"),
        (["--rate", "0.95"], "masks no token"),
        (["-n", "0"], "-n must be at least 1"),
        (["--examples", "-1"], "--examples must be >= 0"),
        (["--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    ]
    for extra, message in cases:
        one_line_error(capsys, ["eval", "infill", str(run), *extra], message)
    one_line_error(capsys, ["eval", "infill", str(synthetic)], "is not a text run")
    one_line_error(capsys, ["eval", "infill", str(tmp_path / "nowhere")], "not found")
    one_line_error(capsys, ["eval", "infill", str(mle)], "does not fill blanks")
    foreign = tmp_path / "foreign.txt"  # another corpus: 9 of every 10 tokens unknown to the run's vocabulary
    foreign.write_text("".join(f"{WORDS[i % len(WORDS)]} {' '.join(f'zz{i}x{k}' for k in range(9))}\n"
                               for i in range(30)))
    one_line_error(capsys, ["eval", "infill", str(run), "--ref", str(foreign)],
                   "90.0% of its tokens (270 of 300) are outside the run's vocabulary")


def test_text_model_test_ids_are_the_test_split_as_trained(text_runs):
    _, mle, test_lines = text_runs
    model = TextModel.load(mle)
    ids = model.test_ids()
    assert ids.shape == (len(test_lines), model.generator.seq_len) and ids.dtype == torch.long
    assert model.decode(ids) == test_lines
    gen = model.generator
    ended = gen.eos_seen(ids)  # [M, T]
    assert bool(ended[:, -1].all()) and bool((ids[ended & (ids != gen.eos_token)] == gen.pad_token).all())


def test_the_lm_baseline_scores_the_same_positions_with_left_context_only(text_runs):
    run, _, _ = text_runs
    model = TextModel.load(run)
    gen = model.generator
    rows = torch.tensor([model.vocab.encode(model.tokenizer.tokenize("a b c d e f g"))])
    rows = torch.cat([rows, torch.tensor([[gen.eos_token]])], dim=1)
    rows = F.pad(rows, (0, gen.seq_len - rows.shape[1]), value=gen.pad_token).repeat(3, 1)  # [3, T]
    present = torch.ones_like(rows, dtype=torch.bool)
    present[0, 2:4] = present[1, 1] = present[2, 5] = False
    nll_sum, lm_sum, count, filled = score_fills(model, rows, present, 1.0, 0)
    assert count == 4 and torch.equal(filled[present], rows[present])
    want = 0.0
    with torch.no_grad():
        logits = gen.lm(rows)  # [3, T, V]
        for b, t in (~present).nonzero().tolist():
            row = torch.cat([logits[b, t, :gen.eos_token], logits[b, t, gen.eos_token + 1:]])  # EOS left out
            target = int(rows[b, t]) - (int(rows[b, t]) > gen.eos_token)
            want -= float(torch.log_softmax(row.double(), 0)[target])
    assert lm_sum == pytest.approx(want, rel=1e-9)
    assert nll_sum != pytest.approx(lm_sum)  # the in-filler, with the right-hand context, is another model
