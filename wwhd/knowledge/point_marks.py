"""A chunk's timed-line marks in a point's payload: one flat list, not a list of pairs.

A chunk of a timed transcript has a mark per line, (character offset, second): ~20 for a
1,500-character chunk of short cues. Stored as pairs, each mark is a two-item list of its own, and
embedded Qdrant (local mode) keeps every payload in memory: the marks were ~3.7 KB of each point,
more than its text (20 of the 45 MB that 5,450 points of a 10 MB transcript add to a worker).
Flat, [offset, second, offset, second, …], they take ~0.7 KB. SQL keeps the pairs (chunks.marks).
Points written before this still hold pairs until they are rewritten; readers accept both.
"""

from __future__ import annotations

from collections.abc import Sequence


def flat(marks: Sequence | None) -> list:
    """[(offset, second), …] → [offset, second, …] (already flat or empty: as it is)."""
    if not marks or not isinstance(marks[0], (list, tuple)):
        return list(marks or [])
    return [value for pair in marks for value in pair]


def pairs(marks: Sequence | None) -> list[tuple]:
    """A payload's marks, flat or (older points) pairs, as [(offset, second), …]."""
    if not marks:
        return []
    if isinstance(marks[0], (list, tuple)):
        return [tuple(pair) for pair in marks]
    return list(zip(marks[0::2], marks[1::2]))


def compact_payload(payload: dict) -> dict:
    """The payload to store: the same fields, with marks flat (a copy; the caller's is kept)."""
    if not payload.get("marks"):
        return payload
    return {**payload, "marks": flat(payload["marks"])}
