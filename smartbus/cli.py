"""The `smartbus` console command: one subcommand per component.

Each subcommand lives in its owner's module, which provides `add_arguments(parser)` and
`run(args) -> int`. Those modules keep their top-level imports light so that `smartbus --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("smartbus.demo", "run the whole service with simulated buses in one process, no system services"),
    "services": ("smartbus.services.command", "install, start, stop the real Kafka, PostgreSQL and Redis"),
    "simulate": ("simulator.command", "simulate buses on a GTFS feed: pings and their ground truth"),
    "ingest": ("ingest.command", "run the ingest edge: HTTP device batches and GTFS-rt polling into Kafka"),
    "eta": ("eta.command", "run an ETA worker: Kafka pings in, vehicle states, stop events, predictions out"),
    "writer": ("smartbus.storage.command", "run the storage and live-state writers (PostgreSQL and Redis)"),
    "api": ("api.command", "run the HTTP and websocket api"),
    "replay": ("eta.replay_command", "run the tracker and predictor over a pings file"),
    "eval": ("eta.eval_command", "score predictions as riders see them (MBTA, ETA benchmark) against baselines"),
    "migrate": ("smartbus.storage.migrate_command", "apply the database migrations"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartbus", description="Real-time bus tracking and arrival prediction.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # not built yet
            raise
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    result: int = args._run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
