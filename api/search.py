"""Stop search by name, insensitive to case and Vietnamese diacritics ("bac ninh" finds "Bắc Ninh")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces: accents stripped, đ→d, punctuation dropped."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_WORD.sub(" ", bare.casefold()).strip()


@dataclass(frozen=True, slots=True)
class _Entry:
    stop_id: str
    folded: tuple[str, ...]  # the feed's name first, then its translations


class StopIndex:
    def __init__(self, stops: Iterable[tuple[str, Sequence[str]]]) -> None:
        """`stops`: (stop_id, names) pairs; the first name is the feed's own, the others its translations.

        A stop is found by any of its names, so a rider finds "Bến xe Bắc Ninh" by typing "bus station" too.
        """
        entries = (_Entry(i, tuple(dict.fromkeys(fold(n) for n in names))) for i, names in stops)
        self._entries = sorted(entries, key=lambda e: (e.folded[0] if e.folded else "", e.stop_id))

    def search(self, query: str, limit: int) -> list[str]:
        """Stop ids with a name holding every word of `query` (or whose id is `query`), best matches first."""
        folded = fold(query)
        if not folded:
            return [e.stop_id for e in self._entries[:limit]]
        words = folded.split()
        ranked = []
        for entry in self._entries:
            if entry.stop_id == query.strip():
                ranked.append((0, entry))
                continue
            ranks = [_rank(name, folded, words) for name in entry.folded]
            best = min((r for r in ranks if r is not None), default=None)
            if best is not None:
                ranked.append((best, entry))
        ranked.sort(key=lambda r: r[0])  # stable: keeps alphabetical order within a rank
        return [entry.stop_id for _, entry in ranked[:limit]]


def _rank(name: str, folded: str, words: list[str]) -> int | None:
    """1: the name starts with the query; 2: a word of it starts with the query's first word; 3: it holds every
    word; None: it does not match."""
    if not all(w in name for w in words):
        return None
    if name.startswith(folded):
        return 1
    if (" " + name).find(" " + words[0]) >= 0:
        return 2
    return 3
