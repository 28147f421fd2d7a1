"""Stop search by name, insensitive to case and Vietnamese diacritics ("bac ninh" finds "Bắc Ninh")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
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
    name: str
    folded: str


class StopIndex:
    def __init__(self, stops: Iterable[tuple[str, str]]) -> None:
        """`stops`: (stop_id, name) pairs."""
        self._entries = sorted((_Entry(i, n, fold(n)) for i, n in stops), key=lambda e: (e.folded, e.stop_id))

    def search(self, query: str, limit: int) -> list[str]:
        """Stop ids whose name holds every word of `query` (or whose id is `query`), best matches first."""
        folded = fold(query)
        if not folded:
            return [e.stop_id for e in self._entries[:limit]]
        words = folded.split()
        ranked = []
        for entry in self._entries:
            if entry.stop_id == query.strip():
                ranked.append((0, entry))
            elif all(w in entry.folded for w in words):
                if entry.folded.startswith(folded):
                    rank = 1
                elif (" " + entry.folded).find(" " + words[0]) >= 0:
                    rank = 2  # a word of the name starts with the query's first word
                else:
                    rank = 3
                ranked.append((rank, entry))
        ranked.sort(key=lambda r: r[0])  # stable: keeps alphabetical order within a rank
        return [entry.stop_id for _, entry in ranked[:limit]]
