"""Ordered, bounded parallel map over a stream, read-ahead, and warming a
thread pool."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, cast

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


_DONE = object()

# Face work runs ahead of the encoder. At a lower priority its threads take
# the CPU time the encoder's threads leave idle rather than taking turns with
# them, which would starve the encoder (the pipeline's bottleneck).
_background_nice = 10


def set_background_nice(nice: int) -> None:
    """The priority :func:`lower_thread_priority` lowers threads to, for the
    whole process (set once at start from its configuration; 0 = off)."""
    global _background_nice
    _background_nice = nice


def background_nice() -> int:
    return _background_nice


def lower_thread_priority() -> None:
    """Lowers the calling thread's scheduling priority to the background
    niceness; threads it starts later inherit it. Linux only (there a thread
    has a nice value of its own); never raises."""
    nice = _background_nice
    if not sys.platform.startswith("linux") or nice <= 0:
        return
    with contextlib.suppress(OSError):
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)


class ReadAhead(Iterator[Out]):
    """Iterates ``items`` on a thread of its own, at most ``depth`` items
    ahead of the consumer: producing and consuming overlap (face work runs
    while the encoder compresses earlier frames) and memory stays bounded.

    The producer's exception is raised in the consumer. :meth:`close` may be
    called from any thread, even while another is waiting for the next
    item (a gRPC request stream): the producer stops at its next item and
    closes ``items`` (a generator's own clean-up, its read-ahead threads and
    open files, runs then, not whenever it is garbage-collected), and the
    consumer sees the end. A ``background`` producer runs at a lower
    priority (:func:`lower_thread_priority`).
    """

    def __init__(self, items: Iterable[Out], depth: int, background: bool = False) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._items = items
        self._background = background
        self._buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, name="swapline-read-ahead", daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        if self._background:
            lower_thread_priority()
        source = iter(self._items)
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # re-raised in the consumer
            self._failure.append(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    self._failure.append(exc)
            self._put(_DONE)

    def __next__(self) -> Out:
        while not self._done:
            try:
                item = self._buffer.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    self._done = True
                continue
            if item is _DONE:
                self._done = True
                self.close()
                if self._failure:
                    raise self._failure[0]
                break
            return cast(Out, item)
        raise StopIteration

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __del__(self) -> None:
        # Dropped unclosed (the generator iterating it was closed): stop and
        # wait for the producer as a generator's clean-up would, so nothing
        # it reads from is closed under it.
        self.close()


def read_ahead(items: Iterable[Out], depth: int, background: bool = False) -> ReadAhead[Out]:
    """``items`` read ahead on a thread of their own (:class:`ReadAhead`)."""
    return ReadAhead(items, depth, background)


def on_every_thread(pool: ThreadPoolExecutor, threads: int, work: Callable[[], None]) -> None:
    """Runs ``work`` once on each of ``pool``'s ``threads`` threads, starting
    them: per-thread state (dlib models) loads now rather than during the
    first requests."""
    everyone = threading.Barrier(threads)

    def one(_: int) -> None:
        try:
            work()
        except BaseException:
            everyone.abort()  # the others stop waiting; map() raises this
            raise
        # Holding each thread until all have one task spreads the tasks over
        # every thread of the pool.
        with contextlib.suppress(threading.BrokenBarrierError):
            everyone.wait(timeout=30)

    list(pool.map(one, range(threads)))
