"""translations.txt compiled into the network: names per language, and what a broken file does."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from eta.network import Network, load_network
from eta.network.language_tags import normalize_tag
from eta.network.translations import MAX_ROW_WARNINGS
from tests.eta.conftest import FEEDS, edge_network

HEADER = "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"


def copy_with_translations(tmp_path: Path, text: str | bytes | None) -> Path:
    """The translations feed with its translations.txt replaced (None: removed)."""
    feed = tmp_path / "feed"
    shutil.copytree(FEEDS / "translations", feed)
    path = feed / "translations.txt"
    if text is None:
        path.unlink()
    elif isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return feed


def good_rows() -> str:
    return (FEEDS / "translations" / "translations.txt").read_text(encoding="utf-8")


def test_names_in_each_language_the_feed_gives() -> None:
    network = edge_network("translations")
    assert network.warnings == ()
    assert network.feed_language == "vi"
    assert network.translation_languages == ("en", "fr")
    station = network.stops["BX"]
    assert station.name == "Bến xe Bắc Ninh"  # the feed's own text stays the name
    assert dict(station.name_translations) == {"en": "Bac Ninh Bus Station", "fr": "Gare routière de Bắc Ninh"}
    assert dict(network.stops["KB"].name_translations) == {"en": "Kinh Bac University"}  # by field_value
    assert network.stops["PM"].name_translations == ()  # not translated: riders get the feed's text
    loop = network.routes["VONG"]
    assert (dict(loop.short_name_translations), dict(loop.long_name_translations)) == (
        {"en": "Loop"},
        {"en": "City circle"},
    )
    assert dict(network.routes["01"].long_name_translations) == {"en": "Bac Ninh Bus Station – Pho Moi"}
    assert network.routes["01"].short_name_translations == ()
    assert dict(network.trips["01-east-0"].headsign_translations) == {"en": "Pho Moi"}
    assert dict(network.trips["01-west-1"].headsign_translations) == {"en": "Bac Ninh Bus Station"}
    agency = network.agencies["BNB"]
    assert (agency.name, dict(agency.name_translations)) == ("Xe buýt Bắc Ninh", {"en": "Bac Ninh Buses"})


def test_a_record_translation_outranks_the_one_by_value() -> None:
    trips = edge_network("translations").trips
    assert trips["01-east-2"].headsign == trips["01-east-0"].headsign == "Phố Mới"
    assert dict(trips["01-east-2"].headsign_translations) == {"en": "Pho Moi (last trip)"}
    assert dict(trips["01-east-1"].headsign_translations) == {"en": "Pho Moi"}


def test_a_field_value_translates_one_field_of_one_table() -> None:
    network = edge_network("translations")
    # The loop's headsign is the very text its route's long name translates by value, but in trips.txt.
    assert network.trips["vong-0"].headsign == network.routes["VONG"].long_name
    assert network.trips["vong-0"].headsign_translations == ()


def test_translations_survive_the_on_disk_cache(tmp_path: Path) -> None:
    compiled = load_network(FEEDS / "translations", tmp_path)
    cached = load_network(FEEDS / "translations", tmp_path)
    assert cached is not compiled and cached.translation_languages == ("en", "fr")
    assert cached.stops == compiled.stops and cached.routes == compiled.routes
    assert cached.agencies == compiled.agencies and cached.feed_language == "vi"
    assert {t: trip.headsign_translations for t, trip in cached.trips.items()} == {
        t: trip.headsign_translations for t, trip in compiled.trips.items()
    }


def test_translations_are_read_from_a_zipped_feed(tmp_path: Path) -> None:
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted((FEEDS / "translations").iterdir()):
            out.write(path, path.name)
    network = load_network(archive)
    assert dict(network.stops["CN"].name_translations) == {"en": "Nhon Market"}
    assert network.feed_hash == edge_network("translations").feed_hash


def test_a_changed_translation_is_a_new_feed_version(tmp_path: Path) -> None:
    feed = copy_with_translations(tmp_path, good_rows().replace("Nhon Market", "Nhớn Market"))
    changed = load_network(feed, tmp_path / "cache")
    assert changed.feed_hash != edge_network("translations").feed_hash
    assert dict(changed.stops["CN"].name_translations) == {"en": "Nhớn Market"}


def test_googles_older_form_translates_every_field_with_that_text(tmp_path: Path) -> None:
    rows = "trans_id,lang,translation\nPhố Mới,EN,Pho Moi\nChợ Nhớn,en,Nhon Market\nChợ Nhớn,fr,Marché de Nhớn\n"
    network = load_network(copy_with_translations(tmp_path, rows))
    assert network.warnings == ()
    assert network.translation_languages == ("en", "fr")
    assert dict(network.stops["PM"].name_translations) == {"en": "Pho Moi"}  # a stop's name...
    assert dict(network.trips["01-east-0"].headsign_translations) == {"en": "Pho Moi"}  # ...and a headsign
    assert dict(network.stops["CN"].name_translations) == {"en": "Nhon Market", "fr": "Marché de Nhớn"}
    assert network.stops["BX"].name_translations == ()


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("stops,stop_name,english!,Pho Moi,PM,,", "'english!' is not a language tag"),
        ("stops,stop_name,en,,PM,,", "'translation' is empty"),
        ("stops,stop_name,en,Pho Moi,,,", "neither record_id nor field_value"),
        ("stops,stop_name,en,Pho Moi,PM,,Phố Mới", "both given"),
        ("stop,stop_name,en,Pho Moi,PM,,", "'stop' is not a GTFS table"),
        ("stops,stop_nmae,en,Pho Moi,PM,,", "'stop_nmae' is not a text field of stops.txt"),
        ("stops,stop_name,en,Bus station,BX,,", "a second 'en' translation of stops 'BX'"),
        # An unclosed quote eats the rows after it: the warning names the line where it opened.
        ('stops,stop_name,en,"Pho Moi,PM,,\nstops,stop_name,en,Pho Moi,PM,,', "spans several lines"),
    ],
)
def test_a_bad_row_is_skipped_with_a_warning_naming_its_line(tmp_path: Path, row: str, problem: str) -> None:
    good = good_rows()
    line = len(good.splitlines()) + 1
    network = load_network(copy_with_translations(tmp_path, good + row + "\n"))
    [warning] = network.warnings
    assert warning.startswith(f"translations.txt line {line}: ") and problem in warning and "skipped" in warning
    # The good rows still count, and the bad one changed nothing.
    assert dict(network.stops["BX"].name_translations)["en"] == "Bac Ninh Bus Station"
    assert network.stops["PM"].name_translations == ()
    assert network.translation_languages == ("en", "fr")


def test_a_translation_of_a_record_the_feed_lacks_is_named(tmp_path: Path) -> None:
    good = good_rows()
    network = load_network(copy_with_translations(tmp_path, good + "stops,stop_name,en,Nowhere,NOPE,,\n"))
    [warning] = network.warnings
    assert f"line {len(good.splitlines()) + 1}" in warning and "'NOPE' is not in stops.txt" in warning
    assert "NOPE" not in network.stops


def test_many_bad_rows_make_a_few_warning_lines_not_a_flood(tmp_path: Path) -> None:
    bad = "".join(f"stops,stop_name,??,x{i},BX,,\n" for i in range(40))
    network = load_network(copy_with_translations(tmp_path, good_rows() + bad))
    assert len(network.warnings) == MAX_ROW_WARNINGS + 1
    assert network.warnings[-1] == f"translations.txt: {40 - MAX_ROW_WARNINGS} more rows skipped"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (HEADER.encode() + "stops,stop_name,fr,Gare routière,BX,,\n".encode("latin-1"), "not UTF-8"),
        ("stop,name,text\nBX,en,Bus station\n", "neither the GTFS columns"),
        (HEADER + "stops,stop_name,en," + "x" * 200_000 + ",BX,,\n", "not readable as CSV"),
    ],
)
def test_an_unreadable_translations_file_is_ignored_and_the_feed_still_runs(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    network = load_network(copy_with_translations(tmp_path, content))
    [warning] = network.warnings
    assert warning.startswith("translations.txt") and problem in warning and "translations ignored" in warning
    assert network.translation_languages == ()
    assert all(s.name_translations == () for s in network.stops.values())
    assert network.trips.keys() == edge_network("translations").trips.keys()  # what tracking needs is all there


def test_an_empty_or_absent_translations_file_is_no_translations(tmp_path: Path) -> None:
    for content in (None, "", HEADER):
        shutil.rmtree(tmp_path / "feed", ignore_errors=True)
        network = load_network(copy_with_translations(tmp_path, content))
        assert (network.warnings, network.translation_languages) == ((), ())


def test_feed_language_comes_from_feed_info_else_the_agencies(tmp_path: Path, cairns: Network) -> None:
    assert cairns.feed_language == "en" and cairns.translation_languages == ()  # agency_lang; no feed_info.txt
    feed = copy_with_translations(tmp_path, None)
    (feed / "feed_info.txt").unlink()
    assert load_network(feed).feed_language == "vi"
    (feed / "feed_info.txt").write_text("feed_publisher_name,feed_publisher_url,feed_lang\nX,https://x.org,mul\n")
    assert load_network(feed).feed_language is None  # names in several languages: no single feed language


@pytest.mark.parametrize(
    ("given", "tag"),
    [
        ("vi", "vi"),
        ("EN-au", "en-AU"),
        ("en_US", "en-US"),
        ("zh-hant-tw", "zh-Hant-TW"),
        (" fr ", "fr"),
        ("", None),
        ("e", None),
        ("en--US", None),
        ("vi;q=0.5", None),
        ("*", None),
    ],
)
def test_language_tags_are_normalised(given: str, tag: str | None) -> None:
    assert normalize_tag(given) == tag
