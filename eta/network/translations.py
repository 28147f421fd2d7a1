"""translations.txt: the feed's names in other languages.

Two forms are read. The GTFS one (table_name, field_name, language, translation, and either record_id
[+ record_sub_id] naming one record or field_value naming every record with that text), and Google's older
extension (trans_id, lang, translation), where trans_id is the text as it stands in any field of the feed.
A translation of one record outranks one by value, as the GTFS reference says.

A broken translations file never stops a feed from compiling: its rows are only names in other languages,
while the stops, trips and times beside them are what tracking needs, so refusing the feed would take
every rider's arrivals away over a typo in a translation. A bad row is skipped, and a file that cannot be
read at all is ignored, each with a warning that names the line and the problem; good rows still count.

Row numbers are line numbers in the file (the header is line 1).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from eta.network.language_tags import normalize_tag
from eta.network.model import Translations

FILE: Final = "translations.txt"
# The names this project shows riders, as (table_name, field_name); a record_id is the table's own id.
TRANSLATED_FIELDS: Final = frozenset(
    {
        ("agency", "agency_name"),
        ("stops", "stop_name"),
        ("routes", "route_short_name"),
        ("routes", "route_long_name"),
        ("trips", "trip_headsign"),
    }
)
# Text fields the GTFS reference lets a feed translate, for the tables we check; translations of the
# fields we do not show are legal and ignored quietly, while a field not in this list is most likely a typo.
_TEXT_FIELDS: Final = {
    "agency": {"agency_name", "agency_url", "agency_phone", "agency_fare_url", "agency_email"},
    "stops": {"stop_name", "tts_stop_name", "stop_desc", "stop_url", "platform_code", "stop_code"},
    "routes": {"route_short_name", "route_long_name", "route_desc", "route_url"},
    "trips": {"trip_headsign", "trip_short_name"},
    "stop_times": {"stop_headsign"},
}
_OTHER_TABLES: Final = {
    "pathways",
    "levels",
    "feed_info",
    "attributions",
    "fare_products",
    "fare_media",
    "areas",
    "networks",
    "location_groups",
    "booking_rules",
}
_GTFS_COLUMNS: Final = ("table_name", "field_name", "language", "translation")
_GOOGLE_COLUMNS: Final = ("trans_id", "lang", "translation")
# Past this many skipped rows, one line says how many more: a feed with thousands of bad rows must not flood the log.
MAX_ROW_WARNINGS: Final = 5


@dataclass
class TranslationTable:
    """What translations.txt says, ready to be asked per record; empty when the feed has no such file."""

    by_record: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)  # (table, field, id)
    by_value: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)  # (table, field, text)
    by_text: dict[str, dict[str, str]] = field(default_factory=dict)  # Google's form: any field's text
    record_lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, record_id) -> first line
    _shared: dict[tuple[str, str, str], Translations] = field(default_factory=dict, repr=False)

    def lookup(self, table: str, column: str, record_id: str | None, text: str | None) -> Translations:
        """The translations of one record's field whose feed text is `text` (None when the field is empty)."""
        if not (self.by_record or self.by_value or self.by_text):
            return ()
        own = self.by_record.get((table, column, record_id)) if record_id is not None else None
        if text is None:
            return _as_translations(own or {})
        key = (table, column, text)
        shared = self._shared.get(key)
        if shared is None:
            merged = {**self.by_text.get(text, {}), **self.by_value.get(key, {})}
            # One tuple per distinct text: thousands of trips with one headsign share it, in memory and in the cache.
            shared = self._shared[key] = _as_translations(merged)
        if not own:
            return shared
        return _as_translations({**dict(shared), **own})

    def unknown_records(self, known: Mapping[str, Iterable[str]]) -> list[str]:
        """Warnings for translations of records the feed does not have (`known`: table -> its ids)."""
        warnings = []
        for table, ids in known.items():
            present = set(ids)
            missing = sorted(
                (line, record_id)
                for (t, record_id), line in self.record_lines.items()
                if t == table and record_id not in present
            )
            if missing:
                line, record_id = missing[0]
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                warnings.append(f"{FILE} line {line}: record_id {record_id!r} is not in {table}.txt{more}; not used")
        return warnings


def _as_translations(texts: Mapping[str, str]) -> Translations:
    return tuple(sorted(texts.items()))


def read_translations(feed: Path) -> tuple[TranslationTable, list[str]]:
    """The feed's translations and the warnings about what had to be skipped (no file: empty, no warnings)."""
    raw = _file_bytes(feed)
    if not raw:
        return TranslationTable(), []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return TranslationTable(), [f"{FILE}: not UTF-8 text ({exc.reason} at byte {exc.start}); translations ignored"]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        parse: _Rows
        if all(c in header for c in _GTFS_COLUMNS):
            parse = _GtfsRows(header)
        elif all(c in header for c in _GOOGLE_COLUMNS):
            parse = _GoogleRows(header)
        else:
            return TranslationTable(), [
                f"{FILE}: the header has neither the GTFS columns ({', '.join(_GTFS_COLUMNS)}) nor the older "
                f"Google ones ({', '.join(_GOOGLE_COLUMNS)}); translations ignored"
            ]
        ended = reader.line_num
        for row in reader:
            line, ended = ended + 1, reader.line_num  # where the row starts (a quoted value may span lines)
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if any("\n" in cell or "\r" in cell for cell in row):
                # No name has a line break: this is an unclosed quote, and the rows after it are lost in it.
                parse.skip(line, "a value spans several lines (an unclosed quote?)")
            else:
                parse.add(line, cells)
    except csv.Error as exc:
        return TranslationTable(), [f"{FILE} line {reader.line_num}: not readable as CSV ({exc}); translations ignored"]
    return parse.table, parse.warnings()


def _file_bytes(feed: Path) -> bytes | None:
    """translations.txt of a feed folder or zip (where gtfs-kit would find it: by its name, at any depth)."""
    try:
        if feed.is_dir():
            path = feed / FILE
            return path.read_bytes() if path.is_file() else None
        with zipfile.ZipFile(feed) as archive:
            members = sorted(
                (i.filename.count("/"), i.filename)
                for i in archive.infolist()
                if not i.is_dir() and Path(i.filename).name == FILE
            )
            return archive.read(members[0][1]) if members else None
    except (OSError, zipfile.BadZipFile):
        return None  # the feed's own reading reports an unreadable feed, with the reason


class _Rows:
    def __init__(self, header: list[str]) -> None:
        self.table = TranslationTable()
        self._column = {name: i for i, name in reversed(list(enumerate(header)))}
        self._skipped: list[tuple[int, str]] = []

    def add(self, line: int, row: list[str]) -> None:
        raise NotImplementedError

    def value(self, row: list[str], column: str) -> str:
        i = self._column.get(column)
        return row[i] if i is not None and i < len(row) else ""

    def skip(self, line: int, problem: str) -> None:
        self._skipped.append((line, problem))

    def warnings(self) -> list[str]:
        shown = [f"{FILE} line {line}: {problem}; row skipped" for line, problem in self._skipped[:MAX_ROW_WARNINGS]]
        if len(self._skipped) > MAX_ROW_WARNINGS:
            shown.append(f"{FILE}: {len(self._skipped) - MAX_ROW_WARNINGS} more rows skipped")
        return shown

    def language(self, line: int, row: list[str], column: str) -> str | None:
        given = self.value(row, column)
        tag = normalize_tag(given)
        if tag is None:
            self.skip(line, f"{column} {given!r} is not a language tag such as 'vi' or 'en-AU'")
        return tag

    def put(self, target: dict[str, str], language: str, translation: str, line: int, what: str) -> None:
        if language in target:
            self.skip(line, f"a second {language!r} translation of {what}")
        else:
            target[language] = translation


class _GtfsRows(_Rows):
    def add(self, line: int, row: list[str]) -> None:
        table_name, field_name, translation = (self.value(row, c) for c in ("table_name", "field_name", "translation"))
        for column, given in (("table_name", table_name), ("field_name", field_name), ("translation", translation)):
            if not given:
                self.skip(line, f"required value {column!r} is empty")
                return
        language = self.language(line, row, "language")
        if language is None:
            return
        if table_name not in _TEXT_FIELDS:
            if table_name not in _OTHER_TABLES:
                self.skip(line, f"table_name {table_name!r} is not a GTFS table")
            return
        if field_name not in _TEXT_FIELDS[table_name]:
            self.skip(line, f"field_name {field_name!r} is not a text field of {table_name}.txt")
            return
        if (table_name, field_name) not in TRANSLATED_FIELDS:
            return  # a legal translation of a field we do not show riders
        record_id, field_value = self.value(row, "record_id"), self.value(row, "field_value")
        if record_id and field_value:
            self.skip(line, "record_id and field_value are both given (a row names one or the other)")
        elif record_id:
            target = self.table.by_record.setdefault((table_name, field_name, record_id), {})
            self.put(target, language, translation, line, f"{table_name} {record_id!r}")
            self.table.record_lines.setdefault((table_name, record_id), line)
        elif field_value:
            target = self.table.by_value.setdefault((table_name, field_name, field_value), {})
            self.put(target, language, translation, line, repr(field_value))
        else:
            self.skip(line, "neither record_id nor field_value says what to translate")


class _GoogleRows(_Rows):
    def add(self, line: int, row: list[str]) -> None:
        trans_id, translation = self.value(row, "trans_id"), self.value(row, "translation")
        for column, given in (("trans_id", trans_id), ("translation", translation)):
            if not given:
                self.skip(line, f"required value {column!r} is empty")
                return
        language = self.language(line, row, "lang")
        if language is not None:
            self.put(self.table.by_text.setdefault(trans_id, {}), language, translation, line, repr(trans_id))
