"""FED, SIF, EmbSim, novelty and vocabulary expansion on synthetic data (no training, no files)."""

from collections import Counter

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cosine

from seqgan_kit.encoders.sentence import first_component, pool, remove_component, sif_embed, sif_weights
from seqgan_kit.encoders.skipthought import ExpandedVocabulary, fit_linear_map
from seqgan_kit.metrics.embedding import embsim, fed, gaussian, novelty, top_k_words, trace_sqrt_product


def _scipy_fed(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fed_equals_a_direct_scipy_computation():
    rng = np.random.default_rng(0)
    for d in (3, 16, 64):
        a = rng.normal(size=(d, d))
        x = rng.normal(size=(800, d))
        y = rng.normal(size=(600, d)) @ a * 0.5 + 0.3
        assert fed(x, y) == pytest.approx(_scipy_fed(x, y), abs=1e-6, rel=1e-9)
        mu, s = gaussian(y)
        assert np.allclose(s, np.cov(y, rowvar=False))
        assert trace_sqrt_product(s, s) == pytest.approx(np.trace(s), rel=1e-10)


def test_fed_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 32)) * 3 + 1
    assert abs(fed(x, x)) < 1e-9


def test_fed_rises_with_corruption():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(3000, 8))
    base = rng.normal(size=(3000, 8))
    noise = rng.normal(size=(3000, 8)) * 2 + 1.5
    values = []
    for rate in (0.0, 0.1, 0.2, 0.4, 0.8):
        gen = base.copy()
        k = int(rate * len(gen))
        gen[:k] = noise[:k]  # nested corruption: each rate corrupts the rows of the lower ones and more
        values.append(fed(ref, gen))
    assert values[0] < 0.05
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


def test_fed_refuses_a_singular_covariance_unless_regularised():
    x = np.random.default_rng(3).normal(size=(10, 16))
    with pytest.raises(ValueError, match="singular"):
        fed(x, x[::-1])
    assert fed(x, x, eps=1e-6) == pytest.approx(0.0, abs=1e-9)


def test_sif_weights_and_component_removal_equal_a_hand_computation():
    words = {"a": 0, "b": 1, "c": 2}
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    counts = np.array([6, 3, 1])  # p = 0.6, 0.3, 0.1
    a = 0.1
    w = sif_weights(counts, a)
    assert np.allclose(w, [0.1 / 0.7, 0.1 / 0.4, 0.1 / 0.2])
    sentences = [["a", "b"], ["c", "zzz"], ["zzz"]]
    x, empty = pool(sentences, words, vectors, w)
    hand0 = (w[0] * vectors[0] + w[1] * vectors[1]) / 2
    hand1 = w[2] * vectors[2] / 1  # "zzz" has no vector: not counted
    assert np.allclose(x, [hand0, hand1, [0, 0]]) and empty == 1
    u = first_component(x)
    _, _, vt = np.linalg.svd(x)
    assert np.allclose(abs(u @ vt[0]), 1.0)
    hand = x - np.outer(x @ u, u)
    assert np.allclose(remove_component(x, u), hand)
    assert np.allclose(hand @ u, 0.0)
    assert np.allclose(sif_embed(sentences, words, vectors, counts, a=a), hand)
    fixed = np.array([1.0, 0.0])
    assert np.allclose(sif_embed(sentences, words, vectors, counts, a=a, pc=fixed), x - np.outer(x[:, 0], fixed))


def test_pool_equals_a_loop_over_tokens_across_chunk_boundaries(monkeypatch):
    import seqgan_kit.encoders.sentence as sentence

    rng = np.random.default_rng(4)
    words = {f"w{i}": i for i in range(50)}
    vectors, weights = rng.normal(size=(50, 7)), rng.uniform(0.1, 1.0, size=50)
    sentences = [[f"w{j}" for j in rng.integers(0, 60, size=rng.integers(0, 9))] for _ in range(40)]  # w50+: unknown
    slow = np.zeros((40, 7))
    for i, tokens in enumerate(sentences):
        known = [words[t] for t in tokens if t in words]
        for j in known:
            slow[i] += weights[j] * vectors[j]
        slow[i] /= max(len(known), 1)
    monkeypatch.setattr(sentence, "POOL_CHUNK", 7)  # many chunks, boundaries inside sentences
    x, empty = pool(sentences, words, vectors, weights)
    assert np.allclose(x, slow, rtol=1e-12, atol=1e-12)
    assert empty == sum(not any(t in words for t in s) for s in sentences)


def _slow_embsim(real, gen, counts, k):
    top = [w for w, _ in sorted(Counter(counts).items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
    top = [w for w in top if w in real and w in gen]
    def sims(space):
        return [[1 - cosine(space[a], space[b]) for b in top] for a in top]
    s_r, s_g = sims(real), sims(gen)
    rows = [1 - cosine(np.array(s_r[i]), np.array(s_g[i])) for i in range(len(top))]
    return np.log10(sum(rows) / len(rows))


def test_embsim_equals_a_slow_reference_and_uses_the_real_top_k():
    rng = np.random.default_rng(4)
    words = [f"w{i:02d}" for i in range(60)]
    counts = {w: int(c) for w, c in zip(words, rng.permutation(60) * 7 + 1, strict=True)}
    real = {w: rng.normal(size=8) for w in words}
    gen = {w: real[w] + rng.normal(size=8) * 0.7 for w in words[:55]}  # 5 words never generated
    res = embsim(real, gen, counts, k=20)
    assert res.embsim == pytest.approx(_slow_embsim(real, gen, counts, 20), abs=1e-10)
    assert res.k == 20 and res.words_used + res.words_missing == 20
    top = top_k_words(counts, 20)
    assert top == [w for w, _ in Counter(counts).most_common(20)]  # counts are distinct: an exact ranking
    outside = next(w for w in words[:55] if w not in top)
    moved = dict(gen, **{outside: rng.normal(size=8)})
    assert embsim(real, moved, counts, k=20).embsim == res.embsim  # a word outside the top K changes nothing
    inside = next(w for w in top if w in gen)
    moved = dict(gen, **{inside: rng.normal(size=8)})
    assert embsim(real, moved, counts, k=20).embsim != res.embsim
    assert embsim(real, real, counts).embsim == pytest.approx(0.0, abs=1e-12)  # identical spaces: log10(1)


def test_novelty_finds_exact_copies():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(50, 6))
    keys = [f"s{i}" for i in range(50)]
    res = novelty(train[10:30], train, keys[10:30], keys)
    assert res["copy_rate"] == 1.0
    assert np.array_equal(res["nearest_index"], np.arange(10, 30))
    assert res["nn_similarity_quantiles"]["0"] == pytest.approx(1.0)
    other = novelty(rng.normal(size=(20, 6)), train, [f"new{i}" for i in range(20)], keys)
    assert other["copy_rate"] == 0.0 and other["nn_similarity_mean"] < 1.0


def test_vocabulary_expansion_recovers_a_known_linear_map():
    rng = np.random.default_rng(6)
    w2v_words = [f"w{i}" for i in range(300)]
    x = rng.normal(size=(300, 10))
    true_map = rng.normal(size=(10, 6))
    enc_tokens = ["<pad>", "<bos>", "<eos>", "<unk>"] + w2v_words[:200]  # the encoder saw 200 of the words
    enc_emb = np.vstack([np.zeros((4, 6)), x[:200] @ true_map + rng.normal(size=(200, 6)) * 1e-3])
    expansion = ExpandedVocabulary(w2v_words, x, enc_tokens, enc_emb, skip=enc_tokens[:4])
    assert expansion.n_shared == 200 and len(expansion.extra) == 100
    assert np.allclose(expansion.map, true_map, atol=1e-2)
    assert np.allclose(expansion.vector("w250"), x[250] @ true_map, atol=5e-2)
    assert expansion.vector("never seen") is None
    with pytest.raises(ValueError, match="at least"):
        fit_linear_map(x[:5], enc_emb[:5])
