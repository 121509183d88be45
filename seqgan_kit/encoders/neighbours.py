"""Neighbouring units of a corpus: what Skip-Thought trains on and what the encoder check retrieves.

A corpus card's ``neighbours`` key says which units of a line are neighbours: ``sentences`` (the sentences of a
paragraph, e.g. Obama's speeches) or ``clauses`` (the clauses of a poem, split after ``，``/``。``).
:func:`triples_of` turns lines into distinct units and index triples ``(previous, current, next)``.
"""

from __future__ import annotations

import re

from ..data.corpus import split_sentences

CLAUSE = re.compile(r"[^，。]+[，。]?")


def neighbour_units(line: str, mode: str) -> list[str]:
    """The consecutive units of one corpus line: its sentences or its clauses."""
    if mode == "sentences":
        return split_sentences(line)
    if mode == "clauses":
        return [c.strip() for c in CLAUSE.findall(line) if c.strip(" ，。")]
    raise ValueError(f"unknown neighbours mode {mode!r}")


def triples_of(lines: list[str], mode: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Distinct units and index triples ``(previous, current, next)`` of consecutive units within each line
    (a unit text that occurs twice gets one index)."""
    units: dict[str, int] = {}
    triples = []
    for line in lines:
        ids = [units.setdefault(u, len(units)) for u in neighbour_units(line, mode)]
        triples.extend(zip(ids, ids[1:], ids[2:], strict=False))
    return list(units), triples
