"""Ordered parallel map, read-ahead and pool warming."""

from __future__ import annotations

import itertools
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from swapline.concurrency import background_nice, on_every_thread, ordered_map, read_ahead


def test_ordered_map_keeps_input_order_whatever_finishes_first() -> None:
    rng = random.Random(0)
    delays = [rng.random() / 200 for _ in range(40)]

    def slow_square(i: int) -> int:
        time.sleep(delays[i])
        return i * i

    assert list(ordered_map(slow_square, range(40), workers=4)) == [i * i for i in range(40)]


def test_read_ahead_stays_within_its_depth_and_passes_errors_on() -> None:
    produced = 0

    def items() -> Iterator[int]:
        nonlocal produced
        for i in range(20):
            produced += 1
            yield i

    seen = []
    for item in read_ahead(items(), depth=3):
        time.sleep(0.005)  # a slow consumer
        # the one handed over, up to `depth` queued, one waiting to be put
        assert produced - len(seen) <= 3 + 2
        seen.append(item)
    assert seen == list(range(20))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken input")

    with pytest.raises(ValueError, match="broken input"):
        list(read_ahead(failing(), depth=2))


def test_on_every_thread_runs_once_per_thread_and_reports_failures() -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        threads: list[int] = []
        lock = threading.Lock()

        def record() -> None:
            with lock:
                threads.append(threading.get_ident())

        on_every_thread(pool, 3, record)
        assert len(threads) == 3 and len(set(threads)) == 3

    with ThreadPoolExecutor(max_workers=2) as pool:

        def broken() -> None:
            raise RuntimeError("model file missing")

        with pytest.raises(RuntimeError, match="model file missing"):
            on_every_thread(pool, 2, broken)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_producer_runs_below_the_consumer_and_its_threads_inherit_it() -> None:
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def items() -> Iterator[tuple[int, int]]:
        seen: list[int] = []
        child = threading.Thread(target=lambda: seen.append(priority()))
        child.start()
        child.join()
        yield priority(), seen[0]

    consumer = priority()
    (producer, started_by_it), *_ = list(read_ahead(items(), depth=1, background=True))
    assert producer == max(consumer, background_nice()) > 0
    assert started_by_it == producer
    assert priority() == consumer  # the caller's own priority is untouched
    (plain, _), *_ = list(read_ahead(items(), depth=1))
    assert plain == consumer


def test_read_ahead_closes_its_source_when_the_consumer_stops() -> None:
    """The source's clean-up runs on the producer's thread before close()
    returns, even while something else still holds the source (a
    traceback, say): its own threads and files do not outlive the consumer."""
    closed: list[str] = []

    def source() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.append(threading.current_thread().name)

    held = source()
    ahead = read_ahead(held, depth=2)
    assert next(ahead) == 0
    ahead.close()
    assert closed == ["swapline-read-ahead"]
