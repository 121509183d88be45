"""Numba kernel behind :mod:`seqgan_kit.models.sampling`'s ``inverse_cdf`` sampler on CPU.

One draw per row from ``softmax(scale * (logits + bias))``, by inverse CDF with one uniform per row, in a single
vectorised pass of ``exp`` over the row (no probabilities, no normalised CDF, nothing of size ``V`` written)::

    pass    e_j = exp(scale * (x_j + b_j) - shift), summed per block of BLOCK entries -> s_k, total
    search  target = u * total; the first block whose running sum exceeds target; inside it (exp recomputed
            for BLOCK entries) the first entry j whose running sum exceeds target.

``shift`` is 0 on the first try, so no separate pass finds the row maximum ``m``. That try is kept when its
total is finite and at least ``V * exp(-50)``: then no term overflowed, and ``m >= -50`` (the total is at most
``V * exp(m)``), so the terms the exponential rounds to 0 (exponent below -87) have probability below
``exp(-37) ~ 1e-16`` relative to the most likely token -- far below float32 resolution, which already ignores
relative probabilities under ~1e-7 in a cumulative sum. Otherwise (logits above ~70 or all below ~-50, or a
non-finite row) a second pass finds ``m`` and the pass is redone with ``shift = m``; a row whose ``m`` is NaN,
``+inf`` or ``-inf`` (NaN or ``+inf`` anywhere, or no finite entry) has no distribution and gets token -1.

A token whose ``e_j`` is 0 (a ``-inf`` logit, or relative probability below ``exp(-87)``) is never drawn;
when float rounding leaves the in-block running sum short of ``target`` the last entry with ``e_j > 0`` is
drawn. The mapping from ``u`` to the token is the inverse CDF up to float32 rounding of the sums, which
moves an entry's interval ends by a few ulps of the total.

``exp`` is Cephes' single-precision polynomial (relative error ~1e-7, ``tests/test_sampling.py`` checks it
against float64) written with float32 arithmetic and an exponent bit-cast only, so LLVM vectorises the pass;
numba's calls to the C library's ``expf`` do not vectorise (no Intel SVML here).
"""

from __future__ import annotations

import math
import os

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

BLOCK = 256
"""Entries per partial sum: the search reads ``V / BLOCK`` sums and recomputes ``BLOCK`` exponentials."""

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_ROUND = np.float32(12582912.0)  # 1.5 * 2**23: (y + _ROUND) - _ROUND rounds |y| < 2**22 to an integer
_LOW = np.float32(-87.0)  # exp(-87) ~ 1.6e-38 is still a normal float32; below it the kernel returns 0
_HIGH = np.float32(88.0)  # exp(88) ~ 1.65e38 < float32 max; above it the kernel returns +inf
_INF = np.float32(np.inf)
_MAX_TOTAL = np.float32(2.0**126)  # below exp(88): a total this large means a clamped term (or a huge row)
_MIN_TOTAL_PER_TOKEN = np.float32(math.exp(-50.0))  # shift 0 is kept when total >= V * this (so m >= -50)


@intrinsic
def _int32_bits_as_float32(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (an LLVM ``bitcast``; vectorises)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


@njit(fastmath={"contract"})
def exp32(y):
    """``exp(y)`` in float32 for ``y <= 88``: 0 below -87 (``-inf`` included), Cephes ``expf`` otherwise
    (relative error ~1e-7). ``y > 88`` and NaN give ``exp(88) ~ 1.65e38``, which no sum of legitimate terms
    reaches (see :func:`_draw_row`)."""
    yc = y if y < _HIGH else _HIGH  # NaN -> _HIGH (one vminps)
    yc = yc if yc > _LOW else _LOW
    n = (yc * _LOG2E + _ROUND) - _ROUND  # nearest integer to yc / ln 2, in [-126, 127]
    r = yc - n * _LN2_HI - n * _LN2_LO  # |r| <= ln(2) / 2
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    e = p * _int32_bits_as_float32((np.int32(n) + np.int32(127)) << np.int32(23))  # p * 2**n
    return np.float32(0.0) if y < _LOW else e  # NaN keeps e = exp(88)


@njit(fastmath={"contract", "reassoc"})
def _block_sums(x, b, scale, shift, sums):
    """``sums[k] = sum of exp(scale * (x[j] + b[j]) - shift)`` over block ``k``; returns their total.
    (``reassoc`` lets each block's sum be split over SIMD lanes.)"""
    v = x.shape[0]
    total = np.float32(0.0)
    for k in range(sums.shape[0]):
        lo = k * BLOCK
        acc = np.float32(0.0)
        for j in range(min(BLOCK, v - lo)):
            acc += exp32(scale * (x[lo + j] + b[lo + j]) - shift)
        sums[k] = acc
        total += acc
    return total


@njit
def _draw_row(x, b, scale, u, sums, scratch):
    """Inverse-CDF draw for one row of logits ``x [V]`` plus ``b [V]`` (see the module docstring); -1 for a
    row without a distribution. ``sums``: scratch of ``ceil(V / BLOCK)`` float32; ``scratch``: BLOCK float32."""
    v = x.shape[0]
    nblk = sums.shape[0]
    shift = np.float32(0.0)
    total = _block_sums(x, b, scale, shift, sums)
    if not (_MIN_TOTAL_PER_TOKEN * np.float32(v) <= total < _MAX_TOTAL):
        m = -_INF  # the row maximum, NaN-aware
        for j in range(v):
            y = scale * (x[j] + b[j])
            if y != y:
                return -1
            m = max(m, y)
        if not (-_INF < m < _INF):
            return -1
        shift = m
        total = _block_sums(x, b, scale, shift, sums)
    target = np.float32(u) * total
    cum = np.float32(0.0)
    k = 0
    while k < nblk - 1 and cum + sums[k] <= target:
        cum += sums[k]
        k += 1
    lo = k * BLOCK
    n = min(BLOCK, v - lo)
    _exps(x[lo:lo + n], b[lo:lo + n], scale, shift, scratch)
    pick = -1
    for j in range(n):
        e = scratch[j]
        if e > 0:
            pick = lo + j
            cum += e
            if cum > target:
                return lo + j
    if pick >= 0:  # rounding: the block's own running sum fell short of target
        return pick
    for j in range(v - 1, -1, -1):  # rounding ran into a block without mass: the last token with mass
        if exp32(scale * (x[j] + b[j]) - shift) > 0:
            return j
    return -1


@njit(fastmath={"contract"})
def _exps(x, b, scale, shift, out):
    for j in range(x.shape[0]):
        out[j] = exp32(scale * (x[j] + b[j]) - shift)


@njit(cache=True, nogil=True)
def draw_rows(logits, bias, scale, u, out):
    """``logits [R, V]`` float32 C-contiguous, ``bias [V]`` float32, ``scale`` float32 > 0, ``u [R]``
    uniforms in [0, 1) -> ``out [R]`` int64 token ids (-1: the row has no distribution)."""
    rows, v = logits.shape
    sums = np.empty((v + BLOCK - 1) // BLOCK, np.float32)
    scratch = np.empty(BLOCK, np.float32)
    for r in range(rows):
        out[r] = _draw_row(logits[r], bias, scale, u[r], sums, scratch)


_POOL = None


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start a new pool on first use."""
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


def draw_rows_threaded(threads, logits, bias, scale, u, out):
    """:func:`draw_rows` on ``threads`` Python threads (the kernel releases the GIL), each on a contiguous
    share of the rows. Same result as :func:`draw_rows`: every row is drawn with its own uniform."""
    global _POOL
    if _POOL is None or _POOL._max_workers < threads - 1:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="seqgan-kit-sampler")
    rows = logits.shape[0]
    cuts = [rows * i // threads for i in range(threads + 1)]
    futures = [_POOL.submit(draw_rows, logits[a:b], bias, scale, u[a:b], out[a:b])
               for a, b in zip(cuts[1:-1], cuts[2:], strict=True)]
    draw_rows(logits[:cuts[1]], bias, scale, u[:cuts[1]], out[:cuts[1]])
    for f in futures:
        f.result()

