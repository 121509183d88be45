"""The encoder check: is a sentence encoder degenerate, does it know which sentence comes next, does it see word
order? (``seqgan-kit eval encoder``)

Measured on held-out text of the encoder's own corpus:

- **mean pairwise cosine** of ``n`` sentence vectors (after L2 normalisation; a zero vector counts as cosine 0)
  and the **share of variance in the top principal component** of the centred vectors. A collapsed encoder gives
  every sentence nearly the same vector: mean cosine near 1.
- **next-unit retrieval**: for held-out triples ``(previous, current, next)`` of neighbouring units (the corpus
  card's ``neighbours``: sentences of a paragraph, clauses of a poem; :mod:`.neighbours`), the share of triples
  whose true next unit has the strictly highest cosine with the current unit among ``k`` candidates: the true
  next unit and ``k - 1`` distractors drawn uniformly without replacement (numpy ``default_rng(seed)``) from the
  split's other distinct units (never the current or the true next unit's text), or with ``same-position``
  only from units at the true next unit's position in their line. Chance is ``1 / k``. Also the
  mean reciprocal rank (ties counted against the true unit).
- **FED ratio under word shuffling**: FED(reference, shuffled held-out text) / FED(reference, held-out text),
  where the reference is ``fed_n`` training examples (a seeded draw) and the shuffled copy permutes
  ``shuffle_rate`` of each example's word positions among themselves (words: characters for a ``char``
  tokenizer, else whitespace words). A bag-of-words encoder scores 1.

The fast functions here (matrix forms) have slow loop references in ``tests/test_encoder_check.py``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.corpus import load_lines
from ..errors import UserError
from ..metrics.embedding import fed, min_samples
from .neighbours import units_and_positions

SPLITS = ("test", "train")
DISTRACTORS = ("random", "same-position")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x [n, d]`` scaled to unit length (zero rows stay zero), float64."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # [n, 1]
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine over the ``n (n - 1)`` ordered pairs of distinct rows of ``x [n, d]`` (n >= 2).

    With unit rows ``v_i``: ``sum_{i != j} v_i . v_j = |sum_i v_i|^2 - sum_i |v_i|^2`` (no ``n x n`` matrix)."""
    v = unit_rows(x)
    n = v.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 vectors, got {n}")
    total = v.sum(axis=0)  # [d]
    return float((total @ total - (v * v).sum()) / (n * (n - 1)))


def top_component_share(x: np.ndarray) -> float:
    """Share of the total variance of the rows of ``x [n, d]`` along their first principal component (the largest
    squared singular value of the centred matrix over the sum of all); nan when every row is the same."""
    x = np.asarray(x, dtype=np.float64)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2  # [min(n, d)]
    total = s.sum()
    return float(s[0] / total) if total > 0 else float("nan")


def draw_distractors(triples: Sequence[tuple[int, int, int]], n_units: int, k: int, seed: int,
                     groups: Sequence[int] | None = None) -> np.ndarray:
    """Candidate unit indices ``[M, k]`` per triple: column 0 the true next unit, then ``k - 1`` distinct units
    drawn uniformly without the triple's current and next unit: from ``range(n_units)``, or, with ``groups``
    (one label per unit), from the units of the true next unit's group (the whole range when the group is too
    small)."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if n_units < k + 1:
        raise ValueError(f"{n_units} distinct units cannot give {k - 1} distractors besides the current and next")
    members: dict[int, np.ndarray] = {}
    if groups is not None:
        labels = np.asarray(groups)
        members = {int(g): np.flatnonzero(labels == g) for g in np.unique(labels)}
    everyone = np.arange(n_units)
    rng = np.random.default_rng(seed)
    out = np.empty((len(triples), k), dtype=np.int64)
    for i, (_, cur, nxt) in enumerate(triples):
        pool = members.get(int(groups[nxt]), everyone) if groups is not None else everyone
        if len(pool) < k + 1:
            pool = everyone
        picked: list[int] = []
        while len(picked) < k - 1:  # redraw the rare hits on the triple's own units
            for u in pool[rng.choice(len(pool), size=k + 1, replace=False)].tolist():
                if u not in (cur, nxt) and u not in picked and len(picked) < k - 1:
                    picked.append(u)
        out[i, 0] = nxt
        out[i, 1:] = picked
    return out


def retrieval_ranks(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of candidate 0 among each row's candidates by cosine with its query: ``queries [M, d]``,
    ``candidates [M, k, d]`` -> ``[M]``. Ties count against candidate 0 (rank = 1 + the number of others scoring
    at least as high), so an encoder that gives everything the same vector ranks last, not first."""
    q = unit_rows(queries)  # [M, d]
    c = unit_rows(candidates.reshape(-1, candidates.shape[-1])).reshape(candidates.shape)  # [M*k, d] -> [M, k, d]
    scores = np.einsum("mkd,md->mk", c, q)  # [M, k]
    return 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


def shuffle_words(words: Sequence[str], rate: float, rng: random.Random) -> list[str]:
    """``words`` with ``round(rate * len)`` of their positions permuted among themselves (a random permutation
    of the chosen positions; it may fix some of them). Fewer than 2 chosen positions: unchanged."""
    k = int(round(rate * len(words)))
    out = list(words)
    if k < 2:
        return out
    pos = rng.sample(range(len(words)), k)
    moved = pos[:]
    rng.shuffle(moved)
    for src, dst in zip(pos, moved, strict=True):
        out[dst] = words[src]
    return out


def words_of(text: str, tokenizer_kind: str) -> tuple[list[str], str]:
    """The words of ``text`` that shuffling moves and the string joining them back: characters (spaces dropped)
    for a ``char`` tokenizer, else whitespace words."""
    if tokenizer_kind == "char":
        return [ch for ch in text if not ch.isspace()], ""
    return text.split(), " "


@dataclass
class CheckSettings:
    """What the check measures on: the split, how many sentences / triples, ``k``, the seed, FED's settings."""

    split: str = "test"
    n: int = 1000
    triples: int = 1000
    k: int = 10
    seed: int = 0
    shuffle_rate: float = 0.5
    fed_n: int = 5000
    fed: bool = True
    distractors: str = "random"
    """``random``: any unit of the split; ``same-position``: units at the true next unit's position in their line
    (a poem's clauses end in ，or 。 by position: this takes the punctuation out of the comparison)."""

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        for name in ("n", "triples"):
            if getattr(self, name) < 2:
                raise UserError(f"--{name} must be at least 2, got {getattr(self, name)}")
        if self.k < 2:
            raise UserError(f"-k must be at least 2, got {self.k}")
        if not 0.0 < self.shuffle_rate <= 1.0:
            raise UserError(f"--shuffle-rate must be in (0, 1], got {self.shuffle_rate}")
        if self.distractors not in DISTRACTORS:
            raise UserError(f"--distractors must be one of {', '.join(DISTRACTORS)}, got {self.distractors!r}")
        if self.fed_n < 2:
            raise UserError(f"--fed-n must be at least 2, got {self.fed_n}")


@dataclass
class CheckData:
    """The texts of one check, the same for every encoder compared on it."""

    sentences: list[str]
    """Up to ``n`` examples of the split (a seeded draw): cosine and principal component."""
    units: list[str]
    """The split's distinct neighbouring units."""
    triples: list[tuple[int, int, int]]
    """Up to ``triples`` index triples into ``units`` (a seeded draw)."""
    candidates: np.ndarray
    """``[M, k]`` unit indices: the true next unit, then the distractors."""
    fed_ref: list[str]
    """Training examples (a seeded draw of ``fed_n``): FED's reference."""
    fed_real: list[str]
    """All examples of the split."""
    fed_shuffled: list[str]
    """``fed_real`` with ``shuffle_rate`` of each example's words shuffled."""
    info: dict[str, Any]


def prepare_check(encoder: Any, settings: CheckSettings) -> CheckData:
    """The texts of the check for ``encoder``'s corpus (read from its run's ``[data]``): every input problem is
    a :class:`UserError` raised here, before any embedding."""
    settings.validate()
    data = encoder.cfg.data
    if not data.neighbours:
        raise UserError(f"corpus {encoder.corpus!r} names no neighbouring units (data.neighbours), which next-unit "
                        f"retrieval needs")
    split = 1 if settings.split == "test" else 0  # load_lines gives (train, test)
    examples = load_lines(data, encoder.cfg.seed)[split]
    paragraphs = load_lines(dataclasses.replace(data, segment="line", max_train=0), encoder.cfg.seed)[split]
    train = load_lines(data, encoder.cfg.seed)[0] if settings.fed else []
    if data.lowercase:
        examples = [t.lower() for t in examples]
        paragraphs = [t.lower() for t in paragraphs]
        train = [t.lower() for t in train]
    examples = [t for t in examples if t.strip()]
    if len(examples) < 2:
        raise UserError(f"the {settings.split} split of corpus {encoder.corpus!r} has {len(examples)} example(s); "
                        f"the check needs at least 2")
    units, triples, positions = units_and_positions(paragraphs, data.neighbours)
    if not triples:
        raise UserError(f"the {settings.split} split of corpus {encoder.corpus!r} has no triple of consecutive "
                        f"{data.neighbours}")
    if len(units) < settings.k + 1:
        raise UserError(f"the {settings.split} split has {len(units)} distinct units: too few for -k {settings.k}")
    n_triples = len(triples)
    rng = np.random.default_rng(settings.seed)
    sentences = [examples[i] for i in sorted(rng.choice(len(examples), min(settings.n, len(examples)),
                                                         replace=False).tolist())]
    picked = sorted(rng.choice(len(triples), min(settings.triples, len(triples)), replace=False).tolist())
    triples = [triples[i] for i in picked]
    candidates = draw_distractors(triples, len(units), settings.k, settings.seed,
                                  positions if settings.distractors == "same-position" else None)
    fed_ref: list[str] = []
    fed_shuffled: list[str] = []
    if settings.fed:
        fed_ref = [train[i] for i in sorted(rng.choice(len(train), min(settings.fed_n, len(train)),
                                                       replace=False).tolist())]
        shuffler = random.Random(settings.seed)
        for text in examples:
            words, sep = words_of(text, data.tokenizer)
            fed_shuffled.append(sep.join(shuffle_words(words, settings.shuffle_rate, shuffler)))
    info = {"corpus": encoder.corpus, "split": settings.split, "n_examples": len(examples), "n_units": len(units),
            "n_triples_in_split": n_triples}
    return CheckData(sentences, units, triples, candidates, fed_ref, examples if settings.fed else [], fed_shuffled,
                     info)


def check_encoder(encoder: Any, data: CheckData, settings: CheckSettings) -> dict[str, Any]:
    """The check's numbers for one encoder on prepared texts (see the module docstring)."""
    x = encoder.embed(data.sentences)  # [n, d]
    needed = sorted({u for t in data.triples for u in t[1:]} | set(data.candidates.reshape(-1).tolist()))
    where = {u: i for i, u in enumerate(needed)}
    vectors = encoder.embed([data.units[u] for u in needed])  # [U', d]
    queries = vectors[[where[t[1]] for t in data.triples]]  # [M, d]
    cand = vectors[np.vectorize(where.get)(data.candidates)]  # [M, k, d]
    ranks = retrieval_ranks(queries, cand)
    out: dict[str, Any] = {
        "encoder": encoder.describe(), "n": len(data.sentences),
        "mean_pairwise_cosine": mean_pairwise_cosine(x), "top_pc_share": top_component_share(x),
        "retrieval": {"top1": float((ranks == 1).mean()), "mrr": float((1.0 / ranks).mean()),
                      "k": settings.k, "chance": 1.0 / settings.k, "n_triples": len(data.triples),
                      "seed": settings.seed,
                      "distractors": f"{settings.k - 1} distinct units drawn uniformly from the split's "
                                     f"{len(data.units)} distinct units (not the current or the true next)"
                                     + (", at the true next unit's position in its line"
                                        if settings.distractors == "same-position" else "")}}
    if settings.fed:
        n_min = min(len(data.fed_ref), len(data.fed_real))
        if n_min < min_samples(encoder.dim):
            out["fed_shuffle"] = {"skipped": f"{n_min} sentences per set, FED needs more than {encoder.dim} "
                                             f"(the encoder's dimension)"}
        else:
            ref = encoder.embed(data.fed_ref)
            real = fed(ref, encoder.embed(data.fed_real))
            shuffled = fed(ref, encoder.embed(data.fed_shuffled))
            out["fed_shuffle"] = {"fed_real": real, "fed_shuffled": shuffled,
                                  "ratio": shuffled / real if real > 0 else None,
                                  "shuffle_rate": settings.shuffle_rate, "n_ref": len(data.fed_ref),
                                  "n_hyp": len(data.fed_real)}
    return out
