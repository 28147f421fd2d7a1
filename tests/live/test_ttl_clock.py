"""The Redis store's record of when it last set each key's TTL (pure logic)."""

from __future__ import annotations

from smartbus.live.redis_store import _TtlClock


def test_a_key_gets_its_ttl_again_once_a_quarter_of_it_has_passed() -> None:
    clock = _TtlClock(ttl_s=100.0)
    assert clock.due("S1", now=0.0)
    assert not clock.due("S1", now=24.9)
    assert clock.due("S2", now=24.9)  # each key on its own
    assert clock.due("S1", now=25.0)
    assert not clock.due("S1", now=49.0)


def test_a_forgotten_key_gets_its_ttl_with_the_next_write() -> None:
    clock = _TtlClock(ttl_s=100.0)
    clock.due("S1", now=0.0)
    clock.due("S2", now=0.0)
    clock.forget(["S1"])
    assert clock.due("S1", now=1.0)
    assert not clock.due("S2", now=1.0)
    clock.forget()
    assert clock.due("S2", now=2.0)


def test_the_clock_forgets_rather_than_grows_past_its_bound() -> None:
    clock = _TtlClock(ttl_s=100.0, max_keys=3)
    for key in ("A", "B", "C"):
        clock.due(key, now=0.0)
    assert clock.due("D", now=1.0)  # full: everything forgotten, D remembered
    assert clock.due("A", now=1.0)
    assert not clock.due("D", now=1.0)
