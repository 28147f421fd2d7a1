"""Stop search by name, insensitive to case and Vietnamese diacritics ("bac ninh" finds "Bắc Ninh"), and by distance."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

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


EARTH_RADIUS_M = 6_371_008.8  # the mean radius: distances of a walk to a stop, not survey work


class StopLocator:
    """Stops near a point, by great-circle distance."""

    def __init__(self, stops: Iterable[tuple[str, float, float]]) -> None:
        """`stops`: (stop_id, lat, lon) in WGS84 degrees; stops without a finite position are left out."""
        located = [(i, lat, lon) for i, lat, lon in stops if math.isfinite(lat) and math.isfinite(lon)]
        self._ids = [i for i, _, _ in located]
        self._lat = np.radians(np.array([lat for _, lat, _ in located], dtype=np.float64))
        self._lon = np.radians(np.array([lon for _, _, lon in located], dtype=np.float64))

    def near(self, lat: float, lon: float, radius_m: float, limit: int) -> list[tuple[str, float]]:
        """(stop_id, metres) of the stops within `radius_m` of the point, nearest first, at most `limit`."""
        if not self._ids:
            return []
        phi, lam = math.radians(lat), math.radians(lon)
        # Haversine: accurate at the short distances that matter here, where the cosine formula rounds to 0.
        a = np.sin((self._lat - phi) / 2) ** 2 + math.cos(phi) * np.cos(self._lat) * np.sin((self._lon - lam) / 2) ** 2
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        inside = np.flatnonzero(metres <= radius_m)
        found = sorted((float(metres[k]), self._ids[k]) for k in inside.tolist())
        return [(stop_id, distance) for distance, stop_id in found[:limit]]
