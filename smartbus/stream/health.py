"""Liveness and readiness of a stage process, as its loops report them (served on /healthz and /readyz).

Live: every stage loop has gone round within `stall_s` (a wedged event loop or a stuck await fails it).
Ready: every stage has started and none is retrying a failed batch (its bus or sink is down).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Stage:
    beat_at: float
    failing: str | None = None


@dataclass
class Health:
    stall_s: float = 60.0
    _stages: dict[str, _Stage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # read from the HTTP server's thread

    def beat(self, stage: str) -> None:
        with self._lock:
            entry = self._stages.setdefault(stage, _Stage(time.monotonic()))
            entry.beat_at = time.monotonic()

    def failing(self, stage: str, reason: str) -> None:
        with self._lock:
            self._stages.setdefault(stage, _Stage(time.monotonic())).failing = reason

    def recovered(self, stage: str) -> None:
        with self._lock:
            self._stages.setdefault(stage, _Stage(time.monotonic())).failing = None

    def forget(self, stage: str) -> None:
        with self._lock:
            self._stages.pop(stage, None)

    def live(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            ages = {name: round(now - s.beat_at, 1) for name, s in self._stages.items()}
        return all(age <= self.stall_s for age in ages.values()), {"seconds_since_loop": ages}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            failing = {name: s.failing for name, s in self._stages.items() if s.failing is not None}
            started = bool(self._stages)
        return started and not failing, {"started": started, "failing": failing}


HEALTH = Health()  # one per process, like the metrics registry
