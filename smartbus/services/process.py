"""Pidfiles and processes: start detached, check a pid is really our program, stop gracefully then forcefully."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def read_pid(pidfile: Path) -> int | None:
    """The pid on the first line of `pidfile` (PostgreSQL's postmaster.pid has more lines), or None."""
    try:
        first_line = pidfile.read_text().splitlines()[0].strip()
        return int(first_line)
    except (OSError, IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str]:
    """The argv of a live process, or [] when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def runs_program(pid: int, marker: str) -> bool:
    """True when `pid` is alive and its command line names `marker` (a pid may be reused by anything)."""
    return any(marker in part for part in cmdline(pid))


def live_pid(pidfile: Path, marker: str) -> int | None:
    """The pid recorded in `pidfile` if that process is alive and is the program we expect."""
    pid = read_pid(pidfile)
    if pid is None or not runs_program(pid, marker):
        return None
    return pid


def terminate(pid: int, marker: str, grace_seconds: float) -> bool:
    """SIGTERM, wait up to `grace_seconds`, then SIGKILL. Only touches `pid` while it still runs `marker`.

    Returns True when the process had to be killed.
    """
    if not runs_program(pid, marker):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if wait_until(lambda: not runs_program(pid, marker), grace_seconds):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    wait_until(lambda: not runs_program(pid, marker), 10.0)
    return True


def wait_until(condition: Callable[[], bool], timeout_seconds: float, interval_seconds: float = 0.2) -> bool:
    """Poll `condition` until it holds or the time is up; returns its last value."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_seconds)


def port_accepts(host: str, port: int, timeout_seconds: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def spawn_detached(argv: Sequence[str], cwd: Path, log_path: Path, pidfile: Path) -> int:
    """Start `argv` in its own session (it outlives this command), output to `log_path`; record its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    pidfile.write_text(f"{process.pid}\n")
    return process.pid


def run_checked(argv: Sequence[str], what: str, cwd: Path | None = None) -> str:
    """Run a set-up step to completion; on failure raise with its output so the reason is visible."""
    from smartbus.errors import ServiceUnavailable

    result = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise ServiceUnavailable(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{output}")
    return result.stdout
