"""Reading a GTFS feed's tables with gtfs-kit and checking what the compiler relies on.

Row numbers in errors are line numbers in the file (the header is line 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smartbus.errors import FeedError

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency": ("agency_timezone",),
    "stops": ("stop_id", "stop_lat", "stop_lon"),
    "routes": ("route_id",),
    "trips": ("route_id", "service_id", "trip_id"),
    "stop_times": ("trip_id", "stop_id", "stop_sequence", "arrival_time", "departure_time"),
    "calendar": (
        "service_id",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "start_date",
        "end_date",
    ),
    "calendar_dates": ("service_id", "date", "exception_type"),
    "shapes": ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
    "frequencies": ("trip_id", "start_time", "end_time", "headway_secs"),
}
REQUIRED_FILES = ("agency", "stops", "routes", "trips", "stop_times")
OPTIONAL_TABLES = ("feed_info",)  # read when present; nothing in them is required by the compiler


def read_tables(feed: Path) -> dict[str, Any]:
    """The feed's tables as pandas DataFrames (None for an absent or empty optional file)."""
    if not feed.exists():
        raise FeedError(str(feed), "no such file or folder")
    import gtfs_kit  # heavy import (about 1.5 s): only when a feed really has to be compiled

    try:
        gtfs = gtfs_kit.read_feed(feed, dist_units="m")
    except Exception as exc:  # gtfs-kit raises bare pandas/zipfile errors on unreadable files
        raise FeedError(feed.name, f"cannot read the feed: {exc}") from exc
    tables: dict[str, Any] = {name: getattr(gtfs, name, None) for name in (*REQUIRED_COLUMNS, *OPTIONAL_TABLES)}
    for name in REQUIRED_FILES:
        if tables[name] is None:
            raise FeedError(f"{name}.txt", "required file is missing or empty")
    if tables["calendar"] is None and tables["calendar_dates"] is None:
        raise FeedError("calendar.txt", "neither calendar.txt nor calendar_dates.txt is present")
    for name, columns in REQUIRED_COLUMNS.items():
        frame = tables[name]
        if frame is None:
            continue
        for column in columns:
            if column not in frame.columns:
                raise FeedError(f"{name}.txt", f"required column {column!r} is missing")
        for column in columns:
            if name == "stop_times" and column in ("arrival_time", "departure_time"):
                continue  # blank times are legal for non-timepoint stops
            missing = np.flatnonzero(frame[column].isna().to_numpy())
            if len(missing):
                raise FeedError(f"{name}.txt", f"required value {column!r} is empty", line_of(frame, missing[0]))
    return tables


def line_of(frame: Any, position: int) -> int:
    """File line number of a frame's row (gtfs-kit keeps file order with a fresh RangeIndex)."""
    return int(frame.index[position]) + 2


def strings(frame: Any, column: str) -> list[str | None]:
    if column not in frame.columns:
        return [None] * len(frame)
    missing = frame[column].isna().to_numpy()
    texts = [str(v).strip() for v in frame[column].astype(object).tolist()]
    return [None if m or not t else t for m, t in zip(missing, texts, strict=True)]


def optional_ints(frame: Any, column: str) -> list[int | None]:
    if column not in frame.columns:
        return [None] * len(frame)
    missing = frame[column].isna().to_numpy()
    values = frame[column].astype(object).tolist()
    try:
        return [None if m else int(v) for m, v in zip(missing, values, strict=True)]
    except (TypeError, ValueError) as exc:
        raise FeedError(f"{column}", f"column {column!r} is not an integer: {exc}") from exc


def floats(frame: Any, column: str, file: str) -> np.ndarray:
    try:
        return np.asarray(frame[column].astype("float64").to_numpy(na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FeedError(file, f"column {column!r} is not numeric: {exc}") from exc


def gtfs_seconds(values: list[str | None], file: str, column: str, lines: np.ndarray) -> np.ndarray:
    """GTFS times 'H:MM:SS' (hours may exceed 24) as float seconds; NaN for blanks."""
    out = np.full(len(values), np.nan)
    for i, text in enumerate(values):
        if text is None:
            continue
        parts = text.strip().split(":")
        try:
            if len(parts) != 3:
                raise ValueError(text)
            h, m, s = (int(p) for p in parts)
            if not (h >= 0 and 0 <= m < 60 and 0 <= s < 61):
                raise ValueError(text)
        except ValueError:
            raise FeedError(file, f"{column} {text!r} is not a time HH:MM:SS", int(lines[i])) from None
        out[i] = h * 3600 + m * 60 + s
    return out
