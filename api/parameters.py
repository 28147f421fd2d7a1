"""Query parameters many endpoints share: the client's languages, a bounding box, id lengths."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Response

from api.languages import Preference, preference
from eta.network import Network

# A `lang` longer than this is no list of languages anyone means.
MAX_LANG_CHARS = 100
# Ids in the feeds we know are a few dozen characters; anything this long is not one.
MAX_ID_CHARS = 200
MAX_BBOX_CHARS = 200


def languages_for(network: Network, lang: str | None, accept_language: str | None) -> Preference:
    return preference(lang, accept_language, network.translation_languages, network.feed_language)


def client_languages(
    request: Request,
    response: Response,
    lang: Annotated[
        str | None,
        Query(
            max_length=MAX_LANG_CHARS,
            description="Languages for names, best first (vi, en-AU, fr,en); overrides Accept-Language. "
            "Names the feed does not translate come in its own text.",
        ),
    ] = None,
) -> Preference:
    """The languages a request wants names in (a dependency of every endpoint that returns names)."""
    response.headers["Vary"] = "Accept-Language"  # caches must not hand one rider's language to another
    try:
        return languages_for(request.app.state.network, lang, request.headers.get("accept-language"))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


Languages = Annotated[Preference, Depends(client_languages)]


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """`min_lon,min_lat,max_lon,max_lat` in WGS84 degrees."""
    parts = text.split(",")
    if len(parts) != 4:
        raise HTTPException(400, "bbox must be min_lon,min_lat,max_lon,max_lat")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise HTTPException(400, "bbox values must be numbers") from None
    if not all(math.isfinite(v) for v in (min_lon, min_lat, max_lon, max_lat)):
        raise HTTPException(400, "bbox values must be finite")
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise HTTPException(400, "bbox must have min <= max, longitudes in [-180, 180], latitudes in [-90, 90]")
    return min_lon, min_lat, max_lon, max_lat
