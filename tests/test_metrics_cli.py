"""`seqgan-kit eval bleu` / `eval self-bleu`: output on small files checked against nltk, and bad input."""

import json
import subprocess
import sys

import pytest
from nltk.tokenize import word_tokenize
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.metrics.text import read_sentences

METHOD1 = SmoothingFunction().method1
HYP = ["the cat sat on the mat .", "a dog runs in the park", "the cat sat on the mat .", "birds fly"]
REF = ["the cat is on the mat .", "a dog is running in a park", "two birds fly south", "the mat is red"]


def nltk_mean(refs, hyps, n):
    scores = [sentence_bleu(refs, h, weights=(1 / n,) * n, smoothing_function=METHOD1) for h in hyps]
    return sum(scores) / len(scores)


def write(path, lines, end="\n"):
    path.write_text(end.join(lines) + end, encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "hyp.txt", HYP), write(tmp_path / "ref.txt", REF)


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_bleu_json_matches_nltk(files, capsys):
    hyp, ref = files
    result = run_json(capsys, ["eval", "bleu", "--hyp", hyp, "--ref", ref, "--n", "2", "3", "4", "5"])
    assert result["n_hyp"] == 4 and result["n_ref"] == 4
    hyps, refs = [s.split() for s in HYP], [s.split() for s in REF]
    for n in (2, 3, 4, 5):
        assert abs(result["bleu"][str(n)] - nltk_mean(refs, hyps, n)) <= 1e-12


def test_self_bleu_json_matches_nltk_leave_one_out(files, capsys):
    hyp, _ = files
    result = run_json(capsys, ["eval", "self-bleu", "--hyp", hyp, "--n", "1", "3"])
    hyps = [s.split() for s in HYP]
    for n in (1, 3):
        scores = [sentence_bleu(hyps[:i] + hyps[i + 1:], h, weights=(1 / n,) * n, smoothing_function=METHOD1)
                  for i, h in enumerate(hyps)]
        assert abs(result["self_bleu"][str(n)] - sum(scores) / 4) <= 1e-12
    assert result["n_hyp"] == 4 and set(result["self_bleu"]) == {"1", "3"}


def test_first_k_lines_treebank_tokens_and_crlf(tmp_path, capsys):
    hyp = write(tmp_path / "h.txt", ["the cat's mat.", "a dog, running"] + HYP, end="\r\n")
    ref = write(tmp_path / "r.txt", REF)
    result = run_json(capsys, ["eval", "bleu", "--hyp", hyp, "--ref", ref, "--n", "2",
                               "--tokenize", "treebank", "--max-hyp", "2", "--max-ref", "3"])
    hyps = [word_tokenize(s, preserve_line=True) for s in ["the cat's mat.", "a dog, running"]]
    assert hyps[0] == ["the", "cat", "'s", "mat", "."]
    refs = [word_tokenize(s, preserve_line=True) for s in REF[:3]]
    assert result["n_hyp"] == 2 and result["n_ref"] == 3
    assert abs(result["bleu"]["2"] - nltk_mean(refs, hyps, 2)) <= 1e-12


def test_char_tokens_for_chinese(tmp_path, capsys):
    hyp = write(tmp_path / "h.txt", ["白日 依山尽", "黄河入海流"])
    ref = write(tmp_path / "r.txt", ["白日依山尽", "黄河入海流。"])
    assert read_sentences(hyp, "char")[0] == ["白", "日", "依", "山", "尽"]
    result = run_json(capsys, ["eval", "bleu", "--hyp", hyp, "--ref", ref, "--n", "2", "--tokenize", "char"])
    assert result["bleu"]["2"] == 1.0  # both lines appear verbatim among the references (BP: r <= c)


def test_table_output_and_corpus_bleu(files, capsys):
    from sacrebleu.metrics import BLEU

    hyp, ref = files
    assert main(["eval", "bleu", "--hyp", hyp, "--ref", ref, "--corpus"]) == 0
    out = capsys.readouterr().out
    assert "BLEU-n" in out and "4 hypotheses" in out and "nrefs:1|" in out
    result = run_json(capsys, ["eval", "bleu", "--hyp", hyp, "--ref", ref, "--corpus"])
    expected = BLEU(tokenize="none").corpus_score(HYP, [REF]).score
    assert result["corpus_bleu"]["score"] == pytest.approx(expected)
    assert "tok:none" in result["corpus_bleu"]["signature"]
    assert main(["eval", "self-bleu", "--hyp", hyp]) == 0
    assert "Self-BLEU-n" in capsys.readouterr().out


def test_allow_empty_scores_empty_lines_as_zero(tmp_path, capsys):
    hyp = write(tmp_path / "h.txt", ["a dog runs in the park", "", "birds fly"])
    ref = write(tmp_path / "r.txt", REF)
    result = run_json(capsys, ["eval", "bleu", "--hyp", hyp, "--ref", ref, "--n", "2", "--allow-empty"])
    hyps = [s.split() for s in ["a dog runs in the park", "", "birds fly"]]
    assert abs(result["bleu"]["2"] - nltk_mean([s.split() for s in REF], hyps, 2)) <= 1e-12


def bad_inputs(tmp_path):
    good = write(tmp_path / "good.txt", HYP)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    gap = write(tmp_path / "gap.txt", ["a b", "c d", "   ", "e f"])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"fine line\ncaf\xe9 au lait\n")
    one = write(tmp_path / "one.txt", ["just one line"])
    missing = str(tmp_path / "nope.txt")
    return [
        (["eval", "bleu", "--hyp", str(empty), "--ref", good], "empty.txt is empty"),
        (["eval", "bleu", "--hyp", good, "--ref", str(empty)], "empty.txt is empty"),
        (["eval", "bleu", "--hyp", gap, "--ref", good], "gap.txt:3: empty line"),
        (["eval", "self-bleu", "--hyp", str(latin1)], "not UTF-8 text (bad byte 0xe9 at offset 13, line 2)"),
        (["eval", "bleu", "--hyp", missing, "--ref", good], "file not found"),
        (["eval", "bleu", "--hyp", good, "--ref", good, "--n", "2", "10"], "--n must be in 1..9, got 10"),
        (["eval", "self-bleu", "--hyp", good, "--n", "0"], "--n must be in 1..9, got 0"),
        (["eval", "bleu", "--hyp", good, "--ref", good, "--max-ref", "0"], "--max-ref must be at least 1"),
        (["eval", "self-bleu", "--hyp", one], "at least 2 sentences"),
        (["eval", "bleu", "--hyp", good, "--ref", one, "--corpus"], "--max-hyp/--max-ref"),
    ]


def test_bad_input_is_one_line_error_with_exit_2(tmp_path, capsys):
    for argv, message in bad_inputs(tmp_path):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("seqgan-kit: error: ") and captured.err.count("\n") == 1, captured.err
        assert message in captured.err, (message, captured.err)


def test_commands_raise_user_error_directly(tmp_path):
    # The command functions raise UserError themselves; main() is only what prints it.
    from seqgan_kit.cli.main import build_parser

    argv, message = bad_inputs(tmp_path)[2]
    args = build_parser().parse_args(argv)
    with pytest.raises(UserError, match=message):
        args.func(args)


def test_building_the_parser_imports_no_heavy_module():
    code = ("import sys; from seqgan_kit.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('numba', 'nltk', 'sacrebleu') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
