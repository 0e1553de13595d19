"""Ordered, bounded parallel map over a stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(
    work: Callable[[In], Out],
    items: Iterable[In],
    workers: int,
    window: int | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> Iterator[Out]:
    """``map(work, items)`` on ``workers`` threads, results in input order.

    At most ``window`` items (default twice the workers) are in flight, so a
    long stream is never read ahead further than that: memory stays flat.
    Pass a long-lived ``pool`` when calling often: threads keep per-thread
    state (dlib models) that is costly to load.
    """
    if workers <= 1:
        yield from map(work, items)
        return
    if pool is None:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swapline") as own:
            yield from ordered_map(work, items, workers, window, own)
        return
    window = window or 2 * workers
    pending: deque[Future[Out]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
