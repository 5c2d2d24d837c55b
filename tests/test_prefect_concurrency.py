"""bounded_map really bounds concurrency (real tasks that sleep and record timestamps)."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.concurrency import bounded_map



@task(cache_policy=NO_CACHE)
def nap(i: int, seconds: float = 0.3) -> tuple[int, float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return i, start, time.monotonic()


STARTED: list[int] = []


@task(cache_policy=NO_CACHE, retries=0)
def nap_or_fail(i: int) -> int:
    STARTED.append(i)
    if i == 1:
        raise ValueError("shard 1 is broken")
    time.sleep(0.3)
    return i


def max_overlap(intervals) -> int:
    events = sorted([(s, 1) for _, s, _ in intervals] + [(e, -1) for _, _, e in intervals], key=lambda x: (x[0], x[1]))
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


@flow
def bounded(n: int, limit: int):
    return bounded_map(nap, range(n), limit=limit)


@flow
def unbounded(n: int):
    return [f.result() for f in nap.map(range(n))]


@pytest.mark.parametrize("limit", [1, 3])
def test_never_more_than_limit_at_once(prefect_server, limit):
    n = 7
    t0 = time.monotonic()
    out = bounded(n, limit)
    elapsed = time.monotonic() - t0
    assert [i for i, _, _ in out] == list(range(n))  # results in item order
    assert max_overlap(out) == limit  # bounded, and the bound is actually used
    assert elapsed >= 0.3 * -(-n // limit)


def test_prefect_default_runner_alone_is_not_bounded(prefect_server):
    assert max_overlap(unbounded(6)) > 3  # why bounded_map exists


def test_failure_stops_submissions_and_raises(prefect_server):
    @flow
    def failing():
        return bounded_map(nap_or_fail, range(10), limit=2)

    STARTED.clear()
    state = failing(return_state=True)
    assert state.is_failed()
    assert sorted(STARTED) == [0, 1]  # nothing submitted after the failure was seen
    with pytest.raises(ValueError, match="shard 1 is broken"):
        state.result()


def test_rejects_nonpositive_limit():
    with pytest.raises(ValueError):
        bounded_map(nap, [1], limit=0)


# ------------------------------------------------------------------ scale: 500 shards
IN_FLIGHT = {"now": 0, "peak": 0}
IN_FLIGHT_LOCK = threading.Lock()


@task(cache_policy=NO_CACHE)
def light_shard(i: int) -> int:
    """A lightweight shard: counts how many shard bodies run at this moment."""
    with IN_FLIGHT_LOCK:
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    time.sleep(0.001)
    with IN_FLIGHT_LOCK:
        IN_FLIGHT["now"] -= 1
    return i * i


SETTLED: list[int] = []


@flow
def many_shards(n: int, limit: int) -> list[int]:
    SETTLED.clear()
    return bounded_map(light_shard, range(n), limit=limit, on_settled=SETTLED.append)


def test_500_shards_never_exceed_the_limit(prefect_server):
    IN_FLIGHT.update(now=0, peak=0)
    t0 = time.monotonic()
    out = many_shards(500, 4)
    elapsed = time.monotonic() - t0
    assert out == [i * i for i in range(500)]  # every result, in shard order
    assert 1 < IN_FLIGHT["peak"] <= 4, IN_FLIGHT  # concurrent, and never above the limit
    assert IN_FLIGHT["now"] == 0
    assert SETTLED == list(range(1, 501))  # progress callback: once per finished shard, counting up
    print(f"500 shards, limit 4: {elapsed:.1f} s ({1000 * elapsed / 500:.0f} ms per shard)")
