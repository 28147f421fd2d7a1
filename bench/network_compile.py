"""How long a feed takes to compile, and to load again from the compiled-network cache.

    .venv/bin/python bench/network_compile.py [--gtfs FEED] [--repeat 5]

Each measurement runs in a fresh Python process (as a worker starting up does), timing `load_network` alone:
- compile: with an empty cache folder, so the feed is read (gtfs-kit) and compiled, and the cache written;
- cached: with the cache that compile wrote, so the network is only read back.
Prints the median and the range of --repeat runs of each, and the imports' time apart (paid once per process
whichever way the network comes). Issue 4's targets: compile under 5 s, cached under 0.5 s on Cairns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEED = REPO / "simulator" / "data" / "cairns_gtfs.zip"

# Run in the child: the imports, then load_network alone, each timed; one JSON line out.
CHILD = """
import json, sys, time
started = time.perf_counter()
from eta.network import load_network
imported = time.perf_counter()
network = load_network(sys.argv[1], sys.argv[2])
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "trips": len(network.trips),
                  "stops": len(network.stops), "shapes": len(network.shapes)}))
"""


def timed_load(feed: Path, cache_dir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(feed), str(cache_dir)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def summary(label: str, values: list[float]) -> str:
    return f"{label:<10} median {statistics.median(values):6.3f} s  (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gtfs", type=Path, default=FEED, help="GTFS zip or folder (default: the bundled Cairns feed)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    compiled: list[float] = []
    cached: list[float] = []
    imports: list[float] = []
    counts: dict[str, float] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="smartbus-compile-") as tmp:
            first = timed_load(args.gtfs, Path(tmp))
            again = timed_load(args.gtfs, Path(tmp))
        compiled.append(first["load_s"])
        cached.append(again["load_s"])
        imports += [first["import_s"], again["import_s"]]
        counts = {k: first[k] for k in ("trips", "stops", "shapes")}

    print(f"feed: {args.gtfs.name} ({args.gtfs.stat().st_size / 1e6:.1f} MB); "
          f"{counts['trips']:.0f} trips, {counts['stops']:.0f} stops, {counts['shapes']:.0f} shapes")
    print(f"machine: {os.cpu_count()} cpus, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{args.repeat} runs of each, each in a fresh process")
    print(summary("compile", compiled) + "   target < 5 s")
    print(summary("cached", cached) + "   target < 0.5 s")
    print(summary("imports", imports) + "   (once per process, either way)")


if __name__ == "__main__":
    main()
