"""seqgan_kit.metrics.bleu against nltk's sentence_bleu (method1 smoothing), sentence by sentence."""

import math
import random
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from seqgan_kit.metrics import _bleu_kernels
from seqgan_kit.metrics.bleu import BleuReferences, bleu, self_bleu

METHOD1 = SmoothingFunction().method1
ORDERS = (1, 2, 3, 4, 5)
TOL = 1e-12


def nltk_bleu(refs, hyp, n):
    return float(sentence_bleu(refs, hyp, weights=(1 / n,) * n, smoothing_function=METHOD1))


def nltk_self_bleu(samples, i, n):
    return nltk_bleu(samples[:i] + samples[i + 1:], samples[i], n)


def max_diff(ours, expected):
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(expected)))) if len(expected) else 0.0


# Small vocabularies so that n-grams match often; lengths 0..9 so that short and empty sentences occur.
token = st.sampled_from(["a", "b", "c", "d", "e"])
sentence = st.lists(token, min_size=0, max_size=9)
int_sentence = st.lists(st.integers(0, 3), min_size=0, max_size=9)
EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True)


@EXAMPLES
@given(hyps=st.lists(sentence, min_size=1, max_size=6), refs=st.lists(sentence, min_size=1, max_size=6))
def test_bleu_matches_nltk_per_sentence(hyps, refs):
    ours = bleu(hyps, refs, orders=ORDERS, per_sentence=True)
    for n in ORDERS:
        expected = [nltk_bleu(refs, h, n) for h in hyps]
        assert max_diff(ours[n], expected) <= TOL, (n, ours[n], expected)


@EXAMPLES
@given(samples=st.lists(int_sentence, min_size=2, max_size=7))
def test_self_bleu_matches_nltk_leave_one_out(samples):
    # Duplicates come up often here (few short sentences over 4 tokens): a copy of the hypothesis must stay
    # among its references.
    ours = self_bleu(samples, orders=ORDERS, per_sentence=True)
    for n in ORDERS:
        expected = [nltk_self_bleu(samples, i, n) for i in range(len(samples))]
        assert max_diff(ours[n], expected) <= TOL, (n, ours[n], expected)


def random_corpus(rng, count, vocab=6, max_len=14):
    return [[rng.randrange(vocab) for _ in range(rng.randint(0, max_len))] for _ in range(count)]


def test_scores_are_bit_identical_to_nltk_on_a_larger_random_set():
    # Same integer counts, same operation order, the same C library log/exp, and an exactly rounded sum:
    # the floats are not just close but equal.
    rng = random.Random(7)
    hyps, refs, samples = random_corpus(rng, 40), random_corpus(rng, 60), random_corpus(rng, 40, vocab=4)
    ours = bleu(hyps, refs, orders=range(1, 8), per_sentence=True)
    ours_self = self_bleu(samples, orders=range(1, 8), per_sentence=True)
    for n in range(1, 8):
        assert ours[n].tolist() == [nltk_bleu(refs, h, n) for h in hyps]
        assert ours_self[n].tolist() == [nltk_self_bleu(samples, i, n) for i in range(len(samples))]


def test_mean_and_single_order_forms_agree_with_per_sentence():
    rng = random.Random(3)
    hyps, refs = random_corpus(rng, 30), random_corpus(rng, 30)
    per = bleu(hyps, refs, orders=(2, 4), per_sentence=True)
    means = bleu(hyps, refs, orders=(2, 4))
    assert means[2] == pytest.approx(math.fsum(per[2]) / 30, abs=0) and means[4] == math.fsum(per[4]) / 30
    assert bleu(hyps, refs, 4) == means[4]
    assert np.array_equal(bleu(hyps, refs, 4, per_sentence=True), per[4])
    expected = math.fsum(nltk_bleu(refs, h, 4) for h in hyps) / 30
    assert abs(means[4] - expected) <= TOL
    assert set(self_bleu(hyps, orders=[3, 2])) == {2, 3}


def test_hypothesis_shorter_than_n():
    # No trigrams or 4-grams: nltk gives those orders numerator 0 over denominator 1, smoothed to 0.1.
    refs = [["a", "b", "c", "d"], ["a", "b"]]
    hyp = ["a", "b"]
    for n in (2, 3, 4, 5, 9):
        assert bleu([hyp], refs, n) == nltk_bleu(refs, hyp, n)
    assert bleu([hyp], refs, 4) == pytest.approx(math.exp(0.5 * math.log(0.1)), abs=0)
    assert bleu([["a"]], refs, 2) == nltk_bleu(refs, ["a"], 2)


def test_no_unigram_match_gives_zero_not_smoothed():
    refs = [["a", "b", "c"]]
    for n in (1, 2, 4):
        assert bleu([["x", "y", "z"]], refs, n) == 0.0 == nltk_bleu(refs, ["x", "y", "z"], n)
    # A unigram match but no bigram match is smoothed instead.
    assert bleu([["a", "x", "y"]], refs, 2) == nltk_bleu(refs, ["a", "x", "y"], 2) > 0


def test_empty_hypothesis_and_empty_reference():
    refs = [[], ["a", "b"]]
    assert bleu([[]], refs, 2) == 0.0 == nltk_bleu(refs, [], 2)
    # An empty reference still counts for the closest length: hypothesis length 1 is closer to 0 than to 2,
    # and the tie rule picks the shorter: r = 0 < c = 1, no brevity penalty.
    assert bleu([["a"]], refs, 1) == nltk_bleu(refs, ["a"], 1) == 1.0
    assert self_bleu([[], ["a"], ["a", "b"]], 2, per_sentence=True).tolist() == [
        nltk_self_bleu([[], ["a"], ["a", "b"]], i, 2) for i in range(3)]


def test_tie_in_reference_length_goes_to_the_shorter_reference():
    hyp = ["a", "b", "c", "d", "e"]
    refs = [["a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d"]]  # lengths 6 and 4, both 1 away from 5
    ours = bleu([hyp], refs, 2)
    assert ours == nltk_bleu(refs, hyp, 2) == nltk_bleu(refs[::-1], hyp, 2)
    # Every n-gram of hyp is in the longer reference, so precisions are 1; r = 4 < c = 5 gives no brevity
    # penalty and a score of exactly 1 (taking r = 6 would give exp(1 - 6/5)).
    assert ours == 1.0
    # Shorter hypothesis, tie between 3 and 5: r = 3 = c, BP = 1; then a lone longer reference: BP < 1.
    assert bleu([["a", "b", "c", "d"]], [["a", "b", "c"], ["a", "b", "c", "d", "e"]], 2) == 1.0
    assert bleu([["a", "b"]], [["a", "b", "c"]], 1) == pytest.approx(math.exp(1 - 3 / 2))


def test_self_bleu_keeps_a_duplicate_of_the_hypothesis_among_its_references():
    s, t = ["a", "b", "c", "d"], ["x", "b", "y"]
    samples = [s, s, t]
    ours = self_bleu(samples, 4, per_sentence=True)
    assert ours[0] == ours[1] == 1.0
    assert ours.tolist() == [nltk_self_bleu(samples, i, 4) for i in range(3)]
    # Without the copy, s is scored against t alone.
    assert self_bleu([s, t], 4, per_sentence=True)[0] == nltk_bleu([t], s, 4) < 1.0


def test_self_bleu_sets_aside_the_unique_top_count_and_own_length():
    # "a a a" holds the top count of "a" alone; its references only reach 2. Its length 3 is unique too,
    # so its closest reference length comes from the others.
    samples = [["a", "a", "a"], ["a", "a", "b", "b"], ["a", "c", "c", "c", "c"], ["a", "a", "b", "b"]]
    for n in (1, 2, 3):
        ours = self_bleu(samples, n, per_sentence=True)
        assert ours.tolist() == [nltk_self_bleu(samples, i, n) for i in range(len(samples))]


def test_unknown_tokens_int_tokens_and_long_sentences():
    rng = random.Random(11)
    refs = random_corpus(rng, 20, vocab=5, max_len=60)
    long_hyps = random_corpus(rng, 20, vocab=5, max_len=200)
    hyps = [[t if rng.random() < 0.8 else 99 for t in h] for h in long_hyps]  # 99: never in the references
    ours = bleu(hyps, refs, orders=(1, 4, 9), per_sentence=True)
    for n in (1, 4, 9):
        assert max_diff(ours[n], [nltk_bleu(refs, h, n) for h in hyps]) <= TOL
    # Tokens compare as nltk compares them: the string "1" is not the integer 1.
    assert bleu([["1", "2"]], [[1, 2]], 1) == 0.0


def test_reference_index_is_reusable():
    rng = random.Random(5)
    refs = random_corpus(rng, 50)
    index = BleuReferences(refs, max_order=5)
    for hyps in (random_corpus(rng, 25), random_corpus(rng, 25)):
        scores = index.score(hyps, ORDERS, per_sentence=True)
        for n in ORDERS:
            assert np.array_equal(scores[n], bleu(hyps, refs, n, per_sentence=True))
            assert scores[n].tolist() == [nltk_bleu(refs, h, n) for h in hyps]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False) | st.sampled_from([1e-16, -1e-16, 0.5, 2.0 ** -60]),
                min_size=0, max_size=9))
def test_exact_sum_is_math_fsum(values):
    assert _bleu_kernels.exact_sum(np.array(values, dtype=np.float64)) == math.fsum(values)


def test_exact_sum_rounds_half_even_across_partials():
    cases = [[1.0, 2.0 ** -53, 2.0 ** -106], [1.0, -(2.0 ** -54), -(2.0 ** -107)], [1e308, 1.0, -1e308],
             [0.1] * 9, [2.0 ** 53, 1.0, 2.0 ** -30]]
    for values in cases:
        assert _bleu_kernels.exact_sum(np.array(values)) == math.fsum(values)


@pytest.mark.parametrize("call, message", [
    (lambda: bleu([["a"]], [["a"]], 0), "1..9"),
    (lambda: bleu([["a"]], [["a"]], orders=(2, 10)), "1..9"),
    (lambda: bleu([["a"]], [["a"]]), "exactly one"),
    (lambda: bleu([["a"]], [["a"]], 2, orders=(2,)), "exactly one"),
    (lambda: bleu([["a"]], [], 2), "no reference"),
    (lambda: bleu([], [["a"]], 2), "no hypotheses"),
    (lambda: self_bleu([["a"]], 2), "at least 2"),
    (lambda: BleuReferences([["a"]], max_order=3).score([["a"]], (4,)), "indexed up to 3"),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_scoring_does_not_import_nltk():
    code = ("import sys; from seqgan_kit.metrics.bleu import bleu, self_bleu; "
            "bleu([['a', 'b']], [['a', 'b']], 2); self_bleu([['a'], ['a', 'b']], 2); "
            "print('nltk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
