"""Our GTFS-realtime feeds against MobilityData's gtfs-realtime-validator: errors and warnings per rule.

    .venv/bin/python bench/gtfs_rt_validate.py --validator-jar PATH [--minutes 3] [--every-s 15] [--port P]
                                               [--keep DIR]

The jar is the validator's batch module (gtfs-realtime-validator-lib, with its dependencies), built outside
this repository and never added to it. Its pom wants org.onebusaway:onebusaway-gtfs 1.3.87, which is not on
Maven Central (only on OneBusAway's own repositories), so the build takes 1.3.4 from Central and drops the one
call 1.3.4 lacks (a stop's coordinates are always set there). From a checkout of
github.com/MobilityData/gtfs-realtime-validator, with a JDK 11+ and Maven:

    cd gtfs-realtime-validator-lib
    sed -i 's#<version>1.3.87</version>#<version>1.3.4</version>#' pom.xml
    sed -i 's#if (stop.isLonSet() && stop.isLatSet()) {#if (true) {#' \
        src/main/java/edu/usf/cutr/gtfsrtvalidator/lib/validation/GtfsMetadata.java
    printf '<settings><mirrors><mirror><id>central</id><mirrorOf>*</mirrorOf>%s</mirror></mirrors></settings>' \
        '<url>https://repo.maven.apache.org/maven2</url>' > /tmp/central-only.xml
    mvn -B -q -s /tmp/central-only.xml package -DskipTests  # target/gtfs-realtime-validator-lib-1.0.0-SNAPSHOT.jar

1. Starts `smartbus demo` (simulated buses on the bundled Cairns feed, no system services) on --port with a
   throwaway --data-dir, and waits until /readyz answers and /api/vehicles lists buses.
2. Every --every-s seconds for --minutes, fetches /gtfs-rt/vehicle-positions.pb, /gtfs-rt/trip-updates.pb and
   /gtfs-rt/alerts.pb and saves each in its own directory, named `<Type>-YYYY-MM-DDTHH-MM-SSZ.pb` with the
   demo's clock at the fetch (the validator's batch mode with `-sort name` takes that as "now"; one directory
   per feed type, because the batch mode compares each file with the one before it).
3. After the first snapshot, through the operator API with the key the demo prints: two alerts (one on a
   route, a stop and a trip; one with no target, so agency-wide), one trip cancellation (a trip of the day not
   started yet) and one skipped stop (a few stops ahead of a bus with predictions), so every part of the
   feeds is there.
4. Runs the validator once per feed type (`java -jar JAR -gtfs FEED.zip -gtfsRealtimePath DIR -sort name`),
   reads its `*.pb.results.json` files, stops the demo (SIGINT, as Ctrl-C) and prints the snapshots validated
   and entities seen per feed type, then per rule id the occurrences, the snapshots they are in and one
   example message, and a last line `errors: N warnings: M` (occurrences). Exit status 1 when any error.

With --keep DIR the snapshots, the validator's results and logs and the demo's log are copied to DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from google.transit import gtfs_realtime_pb2 as rt  # noqa: E402

from smartbus.settings import BUNDLED_FEED  # noqa: E402

SMARTBUS = str(Path(sys.executable).parent / "smartbus")
# Feed type: (path on the api, file name prefix the validator's docs use).
FEEDS: dict[str, tuple[str, str]] = {
    "vehicle-positions": ("/gtfs-rt/vehicle-positions.pb", "VehiclePositions"),
    "trip-updates": ("/gtfs-rt/trip-updates.pb", "TripUpdates"),
    "alerts": ("/gtfs-rt/alerts.pb", "Alerts"),
}
READY_TIMEOUT_S = 600.0
VALIDATOR_TIMEOUT_S = 900.0
KEY_LINE = re.compile(r"demo key \(analyst, operator\): (\S+)")
SKIP_AHEAD = 3  # the skipped stop is this many stops after the bus's next stop
CANCEL_AFTER_S = 15 * 60.0  # the cancelled trip starts at least this long after now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Demo:
    """`smartbus demo` as a child process, its output kept in a log file and scanned for the demo key."""

    def __init__(self, port: int, feed: Path, data_dir: Path, log_path: Path) -> None:
        self.log_path = log_path
        self.key: str | None = None
        self._log = log_path.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            [SMARTBUS, "demo", "--port", str(port), "--gtfs", str(feed), "--speed", "1", "--data-dir", str(data_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._log.write(line)
            self._log.flush()
            found = KEY_LINE.search(line)
            if found:
                self.key = found.group(1)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> tuple[int | None, float]:
        """SIGINT (Ctrl-C) and wait; SIGKILL after 60 s. Returns (exit status, seconds to stop)."""
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(30)
        self._reader.join(10)
        self._log.close()
        return self.popen.returncode, time.monotonic() - started


def wait_ready(client: httpx.Client, demo: Demo) -> list[dict[str, Any]]:
    """Until /readyz answers 200 and /api/vehicles lists buses on trips (and the demo key was printed)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if demo.popen.poll() is not None:
            raise SystemExit(f"the demo exited ({demo.popen.returncode}) before it was ready:\n{demo.tail()}")
        try:
            if client.get("/readyz").status_code == 200 and demo.key:
                vehicles: list[dict[str, Any]] = client.get("/api/vehicles").json()["vehicles"]
                if any(v.get("trip_id") for v in vehicles):
                    return vehicles
        except httpx.TransportError:
            pass
        time.sleep(1.0)
    raise SystemExit(f"the demo was not ready after {READY_TIMEOUT_S:.0f} s:\n{demo.tail()}")


def server_time(client: httpx.Client) -> float:
    """The demo's clock (it starts at the next moment with service when the timetable has none now)."""
    value: float = client.get("/api/vehicles").json()["server_time"]
    return value


def create_notices(client: httpx.Client, key: str, now: float) -> list[str]:
    """Two alerts, one cancellation and one skipped stop, chosen from the buses on the road now; says which."""
    headers = {"Authorization": f"Bearer {key}"}
    done: list[str] = []
    vehicles = [v for v in client.get("/api/vehicles").json()["vehicles"]
                if v.get("trip_id") and v.get("service_date") and v.get("next_stop_sequence") is not None]
    if not vehicles:
        raise SystemExit("no bus on a trip with a next stop: cannot place a skipped stop")
    on_trips = {v["trip_id"] for v in vehicles}

    # Skipped stop: a bus with the most stops still ahead, SKIP_AHEAD stops after its next one.
    best: tuple[int, dict[str, Any], list[dict[str, Any]]] | None = None
    for vehicle in vehicles[:40]:
        stop_times = client.get(f"/api/trips/{vehicle['trip_id']}").json()["stop_times"]
        ahead = [s for s in stop_times if s["stop_sequence"] > vehicle["next_stop_sequence"]]
        if best is None or len(ahead) > best[0]:
            best = (len(ahead), vehicle, ahead)
    assert best is not None
    _, bus, ahead = best
    if len(ahead) < 2:
        raise SystemExit("no bus has two stops ahead: cannot place a skipped stop")
    skipped = ahead[min(SKIP_AHEAD, len(ahead) - 2)]
    body = {"trip_id": bus["trip_id"], "service_date": bus["service_date"], "stop_ids": [skipped["stop_id"]],
            "reason": "bench: stop closed"}
    response = client.post("/api/operator/skips", json=body, headers=headers)
    response.raise_for_status()
    done.append(f"skip: stop {skipped['stop_id']} (sequence {skipped['stop_sequence']}) of trip "
                      f"{bus['trip_id']} on {bus['service_date']}, bus {bus['vehicle_id']} at sequence "
                      f"{bus['next_stop_sequence']}")

    # Cancellation: a trip of the day on the same route (else any bus's route) not started and with no bus on it.
    service_date = bus["service_date"]
    day = f"{service_date[:4]}-{service_date[4:6]}-{service_date[6:]}"
    routes = [bus["route_id"], *sorted({v["route_id"] for v in vehicles if v.get("route_id")} - {bus["route_id"]})]
    cancelled: dict[str, Any] | None = None
    for route_id in routes:
        trips = client.get(f"/api/routes/{route_id}/trips", params={"date": day}).json()["trips"]
        later = [t for t in trips if t["scheduled_start"] > now + CANCEL_AFTER_S and t["trip_id"] not in on_trips]
        if later:
            cancelled = min(later, key=lambda t: t["scheduled_start"])
            break
    if cancelled is None:
        raise SystemExit("no trip later today to cancel")
    body = {"trip_id": cancelled["trip_id"], "service_date": service_date, "reason": "bench: no driver"}
    client.post("/api/operator/cancellations", json=body, headers=headers).raise_for_status()
    starts = dt.datetime.fromtimestamp(cancelled["scheduled_start"], dt.UTC)
    done.append(f"cancellation: trip {cancelled['trip_id']} on {service_date} (starts {starts:%H:%M} UTC)")

    # Alerts: one on the skipped stop's route, stop and trip; one with no target (the whole agency).
    targeted = {
        "alert_id": "bench-roadworks",
        "header": {"en": "Roadworks: a stop is closed", "vi": "Sửa đường: một trạm tạm đóng"},
        "description": {"en": "Buses do not call at this stop today."},
        "cause": "CONSTRUCTION",
        "effect": "DETOUR",
        "route_ids": [bus["route_id"]],
        "stop_ids": [skipped["stop_id"]],
        "trip_ids": [bus["trip_id"]],
        "start": now - 60,
        "end": now + 2 * 3600,
    }
    agency_wide = {
        "alert_id": "bench-weather",
        "header": {"en": "Heavy rain: expect delays"},
        "cause": "WEATHER",
        "effect": "SIGNIFICANT_DELAYS",
        "end": now + 3600,
    }
    for alert in (targeted, agency_wide):
        client.put(f"/api/operator/alerts/{alert['alert_id']}", json=alert, headers=headers).raise_for_status()
    done.append(f"alerts: {targeted['alert_id']} (route {bus['route_id']}, stop {skipped['stop_id']}, "
                      f"trip {bus['trip_id']}), {agency_wide['alert_id']} (no target)")
    return done


def snapshot_name(prefix: str, at: float) -> str:
    """`<prefix>-YYYY-MM-DDTHH-MM-SSZ.pb`: the last 20 characters before the extension are the time (UTC)."""
    return f"{prefix}-{dt.datetime.fromtimestamp(at, dt.UTC):%Y-%m-%dT%H-%M-%SZ}.pb"


def describe(kind: str, feed: Any, tally: Counter[str]) -> None:
    """Add what one snapshot holds to `tally`."""
    tally["entities"] += len(feed.entity)
    for entity in feed.entity:
        if kind == "vehicle-positions":
            tally["on a trip"] += int(entity.vehicle.HasField("trip"))
        elif kind == "trip-updates":
            update = entity.trip_update
            if update.trip.schedule_relationship == rt.TripDescriptor.CANCELED:
                tally["cancelled trips"] += 1
            tally["stop_time_updates"] += len(update.stop_time_update)
            tally["skipped stops"] += sum(
                1 for u in update.stop_time_update
                if u.schedule_relationship == rt.TripUpdate.StopTimeUpdate.SKIPPED
            )
        else:
            tally["operator alerts" if entity.id.startswith("operator:") else "vehicle alerts"] += 1


@dataclass
class Rule:
    rule_id: str
    severity: str
    title: str
    occurrences: int = 0
    snapshots: set[str] = field(default_factory=set)
    example: str = ""


def read_results(kind: str, directory: Path, rules: dict[str, Rule], per_feed: Counter[str]) -> int:
    """Fold the validator's `*.pb.results.json` files of one feed type into `rules`; returns how many."""
    files = sorted(directory.glob("*.pb.results.json"))
    for path in files:
        for item in json.loads(path.read_text(encoding="utf-8")):
            rule_json = item["errorMessage"]["validationRule"]
            rule_id = rule_json["errorId"]
            severity = rule_json.get("severity") or ("ERROR" if rule_id.startswith("E") else "WARNING")
            rule = rules.setdefault(rule_id, Rule(rule_id, severity, rule_json.get("title", "")))
            occurrences = item.get("occurrenceList") or []
            rule.occurrences += len(occurrences)
            rule.snapshots.add(path.name)
            per_feed[f"{rule_id} {kind}"] += len(occurrences)
            if not rule.example and occurrences:
                message = f"{occurrences[0].get('prefix', '')} {rule_json.get('occurrenceSuffix', '')}".strip()
                rule.example = f"{kind} {path.name.removesuffix('.results.json')}: {message}"
    return len(files)


def validate(jar: Path, feed_zip: Path, directory: Path, log_path: Path) -> None:
    command = ["java", "-jar", str(jar), "-gtfs", str(feed_zip), "-gtfsRealtimePath", str(directory), "-sort", "name"]
    with log_path.open("w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=VALIDATOR_TIMEOUT_S,
                                check=False)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise SystemExit(f"the validator failed ({result.returncode}) on {directory.name}:\n{tail}")


def static_feed(tmp: Path) -> Path:
    """The bundled feed the demo runs, as a zip (the validator's -gtfs wants one)."""
    if BUNDLED_FEED.is_file():
        return BUNDLED_FEED
    target = tmp / "gtfs.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(BUNDLED_FEED.glob("*.txt")):
            archive.write(path, path.name)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validator-jar", type=Path, required=True,
                        help="gtfs-realtime-validator-lib jar with its dependencies (batch mode)")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to take snapshots (default 3)")
    parser.add_argument("--every-s", type=float, default=15.0, help="seconds between snapshots (default 15)")
    parser.add_argument("--port", type=int, default=None, help="the demo's HTTP port (default: a free one)")
    parser.add_argument("--keep", type=Path, default=None, help="copy snapshots, results and logs here")
    args = parser.parse_args()
    if not args.validator_jar.is_file():
        raise SystemExit(f"no validator jar at {args.validator_jar}")
    if shutil.which("java") is None:
        raise SystemExit("java is not on PATH (the validator needs Java 11 or later)")
    if args.every_s < 1 or args.minutes <= 0:
        raise SystemExit("--every-s must be at least 1 and --minutes positive")
    count = max(1, int(-(-args.minutes * 60 // args.every_s)))
    port = args.port or free_port()
    started = time.monotonic()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load {load()}, "
          f"Python {platform.python_version()}")
    print(f"validator: {args.validator_jar.resolve()}; static feed: {BUNDLED_FEED.relative_to(REPO)}")

    with tempfile.TemporaryDirectory(prefix="gtfs-rt-validate-") as tmp_name:
        tmp = Path(tmp_name)
        feed_zip = static_feed(tmp)
        dirs = {kind: tmp / kind for kind in FEEDS}
        for directory in dirs.values():
            directory.mkdir()
        demo = Demo(port, feed_zip, tmp / "demo-data", tmp / "demo.log")
        tallies: dict[str, Counter[str]] = {kind: Counter() for kind in FEEDS}
        ids: dict[str, set[str]] = {kind: set() for kind in FEEDS}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                vehicles = wait_ready(client, demo)
                ready_s = time.monotonic() - started
                offset = server_time(client) - time.time()
                print(f"demo ready on port {port} in {ready_s:.0f} s ({len(vehicles)} buses on the road so far)"
                      + (f"; its clock runs {offset / 3600:.1f} h ahead of the wall clock (no service now)"
                         if abs(offset) > 60 else ""))
                notices: list[str] = []
                first_tick = time.monotonic()
                for index in range(count):
                    time.sleep(max(0.0, first_tick + index * args.every_s - time.monotonic()))
                    at = time.time() + offset
                    for kind, (path, prefix) in FEEDS.items():
                        response = client.get(path)
                        response.raise_for_status()
                        (dirs[kind] / snapshot_name(prefix, at)).write_bytes(response.content)
                        feed = rt.FeedMessage()
                        feed.ParseFromString(response.content)
                        describe(kind, feed, tallies[kind])
                        ids[kind].update(e.id for e in feed.entity)
                    if index == 0:
                        assert demo.key is not None
                        notices = create_notices(client, demo.key, server_time(client))
                print(f"took {count} snapshots of each feed every {args.every_s:g} s "
                      f"(operator notices made after the first):")
                for line in notices:
                    print(f"  {line}")
        finally:
            status, stop_s = demo.stop()
        print(f"demo stopped with status {status} in {stop_s:.1f} s")

        validate_started = time.monotonic()
        rules: dict[str, Rule] = {}
        per_feed: Counter[str] = Counter()
        validated: dict[str, int] = {}
        for kind, directory in dirs.items():
            validate(args.validator_jar, feed_zip, directory, tmp / f"validator-{kind}.log")
            validated[kind] = read_results(kind, directory, rules, per_feed)
        print(f"validator ran in {time.monotonic() - validate_started:.0f} s (three batch runs, one per feed type)")
        if args.keep is not None:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("demo-data"))
            print(f"kept snapshots, results and logs in {args.keep}")

    print()
    print(f"{'feed':<18} {'snapshots':>9} {'validated':>9} {'entities':>9} {'distinct':>9}  details")
    for kind in FEEDS:
        tally = tallies[kind]
        details = ", ".join(f"{name} {n}" for name, n in sorted(tally.items()) if name != "entities")
        print(f"{kind:<18} {count:>9} {validated[kind]:>9} {tally['entities']:>9} {len(ids[kind]):>9}  {details}")
    print("(validated: the validator skips a snapshot identical to the one before it)")
    print()
    errors = sum(r.occurrences for r in rules.values() if r.severity == "ERROR")
    warnings = sum(r.occurrences for r in rules.values() if r.severity != "ERROR")
    if rules:
        print(f"{'rule':<6} {'severity':<8} {'occurrences':>11} {'snapshots':>9}  title / by feed / example")
        for rule in sorted(rules.values(), key=lambda r: (r.severity != "ERROR", r.rule_id)):
            by_feed = ", ".join(f"{kind} {per_feed[f'{rule.rule_id} {kind}']}" for kind in FEEDS
                                if per_feed[f"{rule.rule_id} {kind}"])
            print(f"{rule.rule_id:<6} {rule.severity:<8} {rule.occurrences:>11} {len(rule.snapshots):>9}  "
                  f"{rule.title}")
            print(f"{'':<38}by feed: {by_feed}")
            print(f"{'':<38}e.g. {rule.example}")
    else:
        print("no rule reported anything")
    print(f"total time {time.monotonic() - started:.0f} s, load average after: {load()}")
    print(f"errors: {errors} warnings: {warnings}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
