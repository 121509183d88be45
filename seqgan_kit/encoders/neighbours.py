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
    units, triples, _ = units_and_positions(lines, mode)
    return units, triples


def units_and_positions(lines: list[str], mode: str) -> tuple[list[str], list[tuple[int, int, int]], list[int]]:
    """:func:`triples_of` plus each unit's position in the first line it occurs in (0: a line's first unit)."""
    units: dict[str, int] = {}
    positions: list[int] = []
    triples = []
    for line in lines:
        ids = []
        for pos, u in enumerate(neighbour_units(line, mode)):
            if u not in units:
                units[u] = len(units)
                positions.append(pos)
            ids.append(units[u])
        triples.extend(zip(ids, ids[1:], ids[2:], strict=False))
    return list(units), triples, positions
