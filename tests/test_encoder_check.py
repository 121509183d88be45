"""The encoder check's fast functions against slow, obvious loops (seqgan_kit.encoders.check)."""

import random

import numpy as np
import pytest

from seqgan_kit.encoders.check import (
    draw_distractors,
    mean_pairwise_cosine,
    retrieval_ranks,
    shuffle_words,
    top_component_share,
    words_of,
)


def cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def test_mean_pairwise_cosine_matches_the_double_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 7)) + rng.normal(size=7)  # a shared offset: cosines well above 0
    x[3] = 0.0  # a zero vector counts as cosine 0
    slow = np.mean([cosine(x[i], x[j]) for i in range(len(x)) for j in range(len(x)) if i != j])
    assert mean_pairwise_cosine(x) == pytest.approx(slow, abs=1e-12)
    assert mean_pairwise_cosine(np.ones((5, 3))) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mean_pairwise_cosine(x[:1])


def test_top_component_share_matches_the_covariance_eigenvalues():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)) * np.array([3.0, 1.0, 1.0, 0.5, 0.1])
    vals = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert top_component_share(x) == pytest.approx(vals.max() / vals.sum(), abs=1e-12)
    line = np.outer(rng.normal(size=50), [1.0, 2.0, -1.0]) + 4.0  # every point on one line
    assert top_component_share(line) == pytest.approx(1.0)


def test_retrieval_ranks_match_the_loop_and_count_ties_against_the_true_unit():
    rng = np.random.default_rng(2)
    q, c = rng.normal(size=(30, 6)), rng.normal(size=(30, 8, 6))
    slow = [1 + sum(cosine(c[m, j], q[m]) >= cosine(c[m, 0], q[m]) for j in range(1, 8)) for m in range(30)]
    assert retrieval_ranks(q, c).tolist() == slow
    same = np.ones((4, 5, 3))  # a collapsed encoder: every candidate ties, the true one ranks last
    assert retrieval_ranks(same[:, 0], same).tolist() == [5, 5, 5, 5]
    c[:, 0] = q * 2.0  # the true next unit points where the query does
    assert (retrieval_ranks(q, c) == 1).all()


def test_distractors_are_seeded_distinct_and_never_the_triple_s_own_units():
    triples = [(0, 1, 2), (1, 2, 3), (5, 6, 7), (8, 9, 0)]
    a = draw_distractors(triples, 12, 10, seed=3)
    assert a.shape == (4, 10) and a.tolist() == draw_distractors(triples, 12, 10, seed=3).tolist()
    assert a[:, 0].tolist() == [2, 3, 7, 0]
    for (_, cur, nxt), row in zip(triples, a, strict=True):
        assert len(set(row.tolist())) == 10 and cur not in row[1:] and nxt not in row[1:]
    assert draw_distractors(triples, 12, 10, seed=4).tolist() != a.tolist()
    with pytest.raises(ValueError):
        draw_distractors(triples, 10, 10, seed=0)  # 10 units cannot give 9 distractors besides cur and next


def test_same_position_distractors_come_from_the_true_next_unit_s_group():
    triples = [(0, 1, 2), (4, 5, 6)]
    groups = [0, 1, 2, 3] * 6  # 24 units, 6 per position
    a = draw_distractors(triples, 24, 5, seed=0, groups=groups)
    assert [groups[u] for u in a[0]] == [2] * 5 and [groups[u] for u in a[1]] == [2] * 5
    b = draw_distractors(triples, 24, 8, seed=0, groups=groups)  # a group of 6 is too small for 7: any unit
    assert len({groups[u] for row in b for u in row}) > 1


def test_shuffle_words_permutes_that_share_of_positions():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20)]
    out = shuffle_words(words, 0.5, rng)
    assert sorted(out) == sorted(words) and out != words
    assert sum(a != b for a, b in zip(out, words, strict=True)) <= 10  # only the 10 chosen positions move
    assert shuffle_words(["a", "b", "c"], 0.3, rng) == ["a", "b", "c"]  # round(0.9) = 1 position: unchanged
    assert words_of("床 前 明 月 光 ，", "char") == (["床", "前", "明", "月", "光", "，"], "")
    assert words_of("We will  win.", "sentencepiece") == (["We", "will", "win."], " ")
