"""What `smartbus services up/down/status` decide, on stand-in services (no real server involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartbus.errors import ServiceUnavailable
from smartbus.services.base import Service
from smartbus.services.command import down, say_storage_path, selected, status, up
from smartbus.services.java import java_major
from smartbus.services.postgres_server import Database, PostgresService


class StandIn(Service):
    """A service whose server is just two flags: does a process of ours run, does something answer."""

    name = "standin"
    startup_timeout_seconds = 2.0

    def __init__(self, services_dir: Path, ours: bool = False, answers: bool = False, starts: bool = True) -> None:
        super().__init__(services_dir)
        self.ours, self.answers, self.starts = ours, answers, starts
        self.launches = self.stops = self.prepares = 0

    @property
    def endpoint(self) -> str:
        return "127.0.0.1:1"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def pid(self) -> int | None:
        return 4242 if self.ours else None

    def probe(self) -> str | None:
        return "1.0" if self.answers else None

    def launch(self) -> None:
        self.launches += 1
        if self.starts:
            self.ours = self.answers = True
        else:
            self.log_path.write_text("booting\n2026-01-01 ERROR Address already in use\nshutting down\n")

    def prepare(self) -> None:
        self.prepares += 1

    def stop(self) -> None:
        self.stops += 1
        self.ours = self.answers = False


def test_up_starts_what_is_down_and_reports_its_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service = StandIn(tmp_path)

    assert up([service]) == 0

    assert (service.launches, service.prepares) == (1, 1)
    assert "standin: started in" in capsys.readouterr().out


def test_up_leaves_a_running_server_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = StandIn(tmp_path, ours=True, answers=True)
    foreign = StandIn(tmp_path, ours=False, answers=True)

    assert up([ours, foreign]) == 0

    assert ours.launches == foreign.launches == ours.stops == foreign.stops == 0
    out = capsys.readouterr().out
    assert "already running; 1.0 on 127.0.0.1:1 (pid 4242)" in out
    assert "not started by us" in out


def test_a_server_that_dies_at_start_fails_up_and_shows_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("smartbus.services.command.DAEMONIZE_GRACE_SECONDS", 0.0)
    service = StandIn(tmp_path, starts=False)

    assert up([service]) == 1

    out = capsys.readouterr().out
    assert "standin: FAILED: exited" in out
    assert "Address already in use" in out


def test_an_install_failure_is_reported_and_the_other_services_still_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Uninstallable(StandIn):
        name = "broken"

        def install(self) -> None:
            raise ServiceUnavailable("apt-get install failed")

    healthy = StandIn(tmp_path)

    assert up([Uninstallable(tmp_path), healthy]) == 1

    assert healthy.answers
    assert "broken: FAILED: apt-get install failed" in capsys.readouterr().out


def test_down_stops_only_our_processes_and_purge_deletes_only_service_dirs(tmp_path: Path) -> None:
    services_dir = tmp_path / "services"
    ours = StandIn(services_dir, ours=True, answers=True)
    foreign = StandIn(tmp_path / "elsewhere", ours=False, answers=True)
    ours.install()
    (ours.home / "data").mkdir()
    neighbour = tmp_path / "keep-me.txt"
    neighbour.write_text("not ours")

    assert down([ours, foreign], services_dir, purge=True) == 0

    assert (ours.stops, foreign.stops) == (1, 0)
    assert not services_dir.exists()
    assert neighbour.read_text() == "not ours"


def test_status_exit_code_says_whether_everything_answers(tmp_path: Path) -> None:
    assert status([StandIn(tmp_path, ours=True, answers=True)]) == 0
    assert status([StandIn(tmp_path, ours=True, answers=True), StandIn(tmp_path)]) == 1


def test_services_start_in_a_fixed_order_whatever_order_they_are_named() -> None:
    assert selected([]) == ("kafka", "postgres", "redis")
    assert selected(["redis", "kafka"]) == ("kafka", "redis")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_402"', 8),
        ("no java here", None),
    ],
)
def test_java_major_version_is_read_from_java_version_output(output: str, major: int | None) -> None:
    assert java_major(output) == major


@pytest.mark.parametrize(
    ("installed", "allow", "expected"),
    [
        (None, True, "TimescaleDB not installed: using the plain PostgreSQL path"),
        ("2.17.2", True, "TimescaleDB 2.17.2 found: hypertables in use"),
        ("2.17.2", False, "TimescaleDB 2.17.2 installed but turned off (--no-timescale): using the plain PostgreSQL"),
    ],
)
def test_up_says_which_storage_path_postgres_serves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    installed: str | None,
    allow: bool,
    expected: str,
) -> None:
    monkeypatch.setattr(PostgresService, "installed_timescale", lambda self: installed)
    database = Database(host="127.0.0.1", port=15432, role="smartbus", password="smartbus", name="smartbus")

    say_storage_path(PostgresService(tmp_path, database, allow_timescale=allow))

    assert expected in capsys.readouterr().out
