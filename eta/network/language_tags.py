"""BCP 47 language tags as GTFS and HTTP use them ("vi", "en-AU", "zh-Hant-TW"), compared without regard to case."""

from __future__ import annotations

import re

_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


def normalize_tag(text: str) -> str | None:
    """The tag in its usual spelling ("EN_au" -> "en-AU", "zh-hant" -> "zh-Hant"); None when it is not a tag.

    An underscore is read as a hyphen: "en_US" is a common slip, and meant as "en-US".
    """
    text = text.strip().replace("_", "-")
    if not _TAG.fullmatch(text):
        return None
    first, *rest = text.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())  # a region
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())  # a script
        else:
            parts.append(part.lower())
    return "-".join(parts)


def primary_language(tag: str) -> str:
    """The language alone, without script or region: "en-AU" -> "en"."""
    return tag.split("-", 1)[0].lower()
