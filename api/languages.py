"""Which language a client gets names in: its `?lang=` or Accept-Language, met with what the feed offers.

A client asks for languages, best first. The feed offers its own text (in its feed language, when known)
and translations into a few languages. The outcome, a `Preference`, is the translation languages to try for
each name in turn; a name translated into none of them is shown in the feed's own text, and so is every
name for a client whose languages the feed does not have.

Asking for the feed's own language ends the list: a Vietnamese feed asked for "vi, en" gives its own
Vietnamese text, never the English a translation might offer for some names.
Pure: no web framework here; the app turns a bad `?lang=` into a 422.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, overload

from eta.network import Translations
from eta.network.language_tags import normalize_tag, primary_language

# The feed's translation languages to try for each name, best first; () means the feed's own text.
Preference = tuple[str, ...]
# More than enough for any real client; caps the work a hostile header can cause.
MAX_LANGUAGES: Final = 8
MAX_HEADER_ENTRIES: Final = 32


def accept_language(header: str) -> list[str]:
    """The tags of an Accept-Language header, best first ("vi-VN,vi;q=0.9,en;q=0.5" -> vi-VN, vi, en).

    Entries that are not language tags, "*" and q=0 are left out: a header is what a browser sends for its
    user, and a garbled one should cost that user nothing but the choice of language.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")[:MAX_HEADER_ENTRIES]):
        text, *parameters = entry.split(";")
        tag = normalize_tag(text)
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag is not None and math.isfinite(weight) and 0 < weight <= 1:
            ranked.append((-weight, position, tag))
    ranked.sort()
    return _unique(tag for _, _, tag in ranked)[:MAX_LANGUAGES]


def lang_parameter(value: str) -> list[str]:
    """The tags of a `?lang=` value: one tag, or several by preference ("vi" or "fr,en"); ValueError if bad."""
    tags = [normalize_tag(part) for part in value.split(",")]
    if not value.strip() or any(tag is None for tag in tags):
        raise ValueError("lang must be a language tag such as vi or en-AU, or several separated by commas")
    return _unique(tag for tag in tags if tag is not None)[:MAX_LANGUAGES]


def negotiate(requested: Sequence[str], available: Sequence[str], feed_language: str | None) -> Preference:
    """The translation languages of the feed (`available`) to try for a client who asked for `requested`.

    For each requested tag: a translation in exactly that tag, then in a shorter form of it ("zh-Hant-TW" ->
    "zh-Hant" -> "zh"); then, unless the feed's own text is already in that language, any regional variant
    ("en" -> "en-GB").
    """
    chosen: list[str] = []
    for tag in requested:
        parts = tag.lower().split("-")
        for n in range(len(parts), 0, -1):
            prefix = "-".join(parts[:n])
            chosen += [a for a in available if a.lower() == prefix]
        if feed_language is not None and primary_language(feed_language) == primary_language(tag):
            break
        chosen += sorted(a for a in available if primary_language(a) == primary_language(tag))
    return tuple(_unique(chosen))


def preference(
    lang: str | None, accept_language_header: str | None, available: Sequence[str], feed_language: str | None
) -> Preference:
    """`?lang=` when given (a ValueError when it is not a language), else the Accept-Language header.

    A blank `?lang=` (a form left empty) counts as not given.
    """
    if lang is not None and lang.strip():
        requested = lang_parameter(lang)  # checked even when the feed translates nothing: the client erred
    elif accept_language_header and available:
        requested = accept_language(accept_language_header)
    else:
        return ()
    return negotiate(requested, available, feed_language) if available else ()


@overload
def localized(text: str, translations: Translations, languages: Preference) -> str: ...
@overload
def localized(text: str | None, translations: Translations, languages: Preference) -> str | None: ...
def localized(text: str | None, translations: Translations, languages: Preference) -> str | None:
    """The name in the first of `languages` it is translated into, else the feed's own text."""
    if translations:
        for language in languages:
            for translated_into, translation in translations:  # a name has a few translations at most
                if translated_into == language:
                    return translation
    return text


def _unique(tags: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for tag in tags:
        if tag not in seen:
            seen.append(tag)
    return seen
