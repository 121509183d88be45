"""Metrics on sentence embeddings: Fréchet embedding distance, EmbSim (DocEmbSim) and novelty.

**FED** (the Fréchet distance of FID, on sentence vectors): fit a Gaussian to each set, ``(mu_r, S_r)`` and
``(mu_g, S_g)``, and report ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` in float64. The trace of
the matrix square root is computed without ``sqrtm`` of a non-symmetric matrix: with ``S_r = R R^T`` (Cholesky;
the symmetric square root when ``S_r`` is singular), ``S_r S_g`` is similar to the symmetric PSD matrix
``M = R^T S_g R``, so ``Tr (S_r S_g)^(1/2) = sum_i sqrt(lambda_i(M))`` (a symmetric eigenvalue problem; tiny
negative eigenvalues from rounding are clipped to 0). 10,000 x 2,400 takes about 25 s on one core. Covariances use
``n - 1``. With ``n <= d`` samples a covariance is singular: :func:`fed` refuses unless ``eps > 0`` is given,
which adds ``eps I`` to both covariances (the value is then reported with it).

**EmbSim** (Texygen's DocEmbSim, on word2vec vectors): take the K most frequent words of the real corpus
(K = W/10 by default), the cosine-similarity matrix of their vectors in the real space ``S_r [K, K]`` and in the
generated text's space ``S_g [K, K]``; EmbSim = ``log10(mean_i cos(S_r[i], S_g[i]))`` (0 is best). Texygen picks
its "frequent" words through ``list(set(...))``, which loses the frequency order; here the top K are taken by
count (ties by the word). Words of the top K without a generated vector are left out (and counted).

**Novelty**: for each sample, its nearest training sentence by cosine of the embeddings, and whether the sample
is an exact copy of a training sentence (after stripping and joining tokens with single spaces); reported as the
copy rate and quantiles of the nearest-neighbour similarity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


# --------------------------------------------------------------------------- FED
def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[d]`` and covariance ``[d, d]`` (``n - 1``) of the rows of ``x [n, d]``, float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a matrix of at least 2 rows, got shape {x.shape}")
    mu = x.mean(axis=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)  # [d, n] @ [n, d] -> [d, d]


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (negative rounding eigenvalues clipped)."""
    vals, vecs = np.linalg.eigh(s)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T  # V diag(sqrt l) V^T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """``Tr (S1 S2)^(1/2)`` for symmetric PSD ``S1``, ``S2``: the sum of the square roots of the eigenvalues of
    the symmetric PSD matrix ``R^T S2 R``, similar to ``S1 S2``, where ``S1 = R R^T``.

    ``R`` is the Cholesky factor when ``S1`` is positive definite (a third of the work of an eigendecomposition:
    10,000 x 2,400 takes seconds), else the symmetric square root ``S1^(1/2)`` (eigenvalues clipped at 0)."""
    try:
        r = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:
        r = _psd_sqrt(s1)
    m = r.T @ s2 @ r
    m = (m + m.T) / 2  # symmetric up to rounding
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64 (clipped at 0)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    diff = mu1 - mu2
    value = float(diff @ diff) + float(np.trace(s1) + np.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2)
    return max(value, 0.0)


def min_samples(dim: int) -> int:
    """Samples needed for a full-rank ``dim x dim`` covariance: ``dim + 1``."""
    return dim + 1


class FEDError(UserError, ValueError):
    """FED cannot be computed from these inputs (too few samples, a bad ``eps``, non-finite embeddings): one
    line at the command line, a ValueError to library callers."""


def fed(x_ref: np.ndarray, x_gen: np.ndarray, eps: float = 0.0) -> float:
    """FED between the rows of ``x_ref [n, d]`` and ``x_gen [m, d]`` (see the module docstring).

    Raises :class:`FEDError` (a ValueError) when either set has fewer than 2 rows, at most ``d`` rows with
    ``eps`` 0 (a singular covariance), ``eps`` is negative or not finite, or an embedding or the result is not
    finite: a FED is a finite number or an error, never ``nan``."""
    x_ref, x_gen = np.asarray(x_ref, np.float64), np.asarray(x_gen, np.float64)
    if x_ref.ndim != 2 or x_gen.ndim != 2 or x_ref.shape[1] != x_gen.shape[1]:
        raise FEDError(f"embeddings of different shapes: {x_ref.shape} and {x_gen.shape}")
    if not (math.isfinite(eps) and eps >= 0):
        raise FEDError(f"--eps must be a finite number >= 0, got {eps}")
    d = x_ref.shape[1]
    n = min(x_ref.shape[0], x_gen.shape[0])
    if n < 2:
        raise FEDError(f"FED needs at least 2 samples per set, got {n}")
    if n < min_samples(d) and eps <= 0:
        raise FEDError(f"{n} samples give a singular {d}x{d} covariance (need at least {min_samples(d)})")
    for what, x in (("reference", x_ref), ("generated", x_gen)):
        if not np.isfinite(x).all():
            raise FEDError(f"the {what} embeddings hold non-finite values (a damaged encoder?)")
    mu1, s1 = gaussian(x_ref)
    mu2, s2 = gaussian(x_gen)
    if eps > 0:
        s1 = s1 + eps * np.eye(d)
        s2 = s2 + eps * np.eye(d)
    try:
        value = frechet_distance(mu1, s1, mu2, s2)
    except np.linalg.LinAlgError as exc:
        raise FEDError(f"FED cannot be computed from these covariances (eps {eps:g}): {exc}") from None
    if not math.isfinite(value):
        raise FEDError(f"FED is not finite ({value}) for these embeddings (eps {eps})")
    return value


# --------------------------------------------------------------------------- EmbSim
def top_k_words(counts: dict[str, int], k: int) -> list[str]:
    """The ``k`` most frequent words by count (ties broken by the word), most frequent first."""
    return sorted(counts, key=lambda w: (-counts[w], w))[:k]


def _cosine_matrix(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    u = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    return u @ u.T  # [K, d] @ [d, K] -> [K, K]


@dataclass
class EmbSimResult:
    embsim: float
    k: int
    words_used: int
    words_missing: int


def embsim(real: dict[str, np.ndarray], generated: dict[str, np.ndarray], counts: dict[str, int],
           k: int | None = None) -> EmbSimResult:
    """DocEmbSim of two word-vector spaces over the real top-``k`` words (default: a tenth of ``counts``)."""
    k = max(1, len(counts) // 10) if k is None else k
    if k < 2:
        raise ValueError(f"EmbSim needs at least 2 frequent words, got k={k}")
    top = top_k_words(counts, k)
    used = [w for w in top if w in real and w in generated]
    if len(used) < 2:
        raise ValueError(f"only {len(used)} of the {len(top)} most frequent words have vectors in both spaces")
    s_r = _cosine_matrix(np.stack([real[w] for w in used]))  # [K', K']
    s_g = _cosine_matrix(np.stack([generated[w] for w in used]))  # [K', K']
    num = (s_r * s_g).sum(axis=1)
    den = np.linalg.norm(s_r, axis=1) * np.linalg.norm(s_g, axis=1)
    row_cos = num / den  # [K'] cos(S_r[i], S_g[i])
    mean = float(row_cos.mean())
    value = float(np.log10(mean)) if mean > 0 else float("-inf")
    return EmbSimResult(value, len(top), len(used), len(top) - len(used))


# --------------------------------------------------------------------------- novelty
def normalise_text(tokens: Sequence[str]) -> str:
    """The exact-match key of a tokenized sentence."""
    return " ".join(tokens)


def nearest(queries: np.ndarray, keys: np.ndarray, k: int = 1, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities ``[n, k]`` and indices ``[n, k]`` of each query's ``k`` nearest keys (best first)."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)

    q, keys_u = unit(queries), unit(keys)
    k = min(k, keys_u.shape[0])
    sims = np.empty((q.shape[0], k), np.float64)
    idx = np.empty((q.shape[0], k), np.int64)
    for lo in range(0, q.shape[0], chunk):
        s = q[lo:lo + chunk] @ keys_u.T  # [c, d] @ [d, M] -> [c, M]
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]  # [c, k] unordered
        part_s = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-part_s, axis=1, kind="stable")
        idx[lo:lo + chunk] = np.take_along_axis(part, order, axis=1)
        sims[lo:lo + chunk] = np.take_along_axis(part_s, order, axis=1)
    return sims, idx


def novelty(sample_emb: np.ndarray, train_emb: np.ndarray, sample_keys: Sequence[str],
            train_keys: Sequence[str]) -> dict:
    """Copy rate (exact matches) and the distribution of nearest-training-sentence cosine similarity."""
    if len(sample_keys) == 0:
        raise ValueError("no samples")
    train_set = set(train_keys)
    copies = np.array([key in train_set for key in sample_keys])
    sims, idx = nearest(sample_emb, train_emb, k=1)
    s = sims[:, 0]
    return {
        "n": len(sample_keys),
        "n_train": len(train_keys),
        "copy_rate": float(copies.mean()),
        "nn_similarity_mean": float(s.mean()),
        "nn_similarity_quantiles": {f"{q:g}": float(np.quantile(s, q)) for q in QUANTILES},
        "nearest_index": idx[:, 0],
        "nearest_similarity": s,
        "copies": copies,
    }


def fed_error(n: int, dim: int, what: str, hint: str = "give more sentences, or --eps E to add E*I to both "
                                                      "covariances") -> UserError:
    """The one-line error for too few samples."""
    return UserError(f"{what}: {n} sentences give a singular {dim}x{dim} covariance; FED needs at least "
                     f"{min_samples(dim)} ({hint})")
