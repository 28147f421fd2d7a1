"""Shared test set-up.

Integration tests (marked `integration`) talk to the real Kafka, PostgreSQL and Redis that
`smartbus services up` starts (the README's test command does it first).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# The machines are shared and noisy: no per-example deadlines or speed health checks, which would make
# property tests fail on load rather than on behaviour. Budgets of examples stay the default.
settings.register_profile(
    "smartbus", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("smartbus")
