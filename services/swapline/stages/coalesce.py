"""Coalesces concurrent swap requests into large inference batches."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

# (model, faces, mask output) -> (swapped faces, masks)
Infer = Callable[[str, np.ndarray, str], Awaitable[tuple[np.ndarray, np.ndarray]]]


@dataclass
class _Pending:
    faces: np.ndarray
    future: asyncio.Future[tuple[np.ndarray, np.ndarray]]


@dataclass
class _ModelQueue:
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class BatchCoalescer:
    """Faces of many callers for one model (and mask output) go into one
    inference call.

    A batch closes when it reaches ``max_batch`` faces or ``max_delay``
    seconds after its first request arrived; up to ``max_in_flight`` batches
    per model run at once, so a batch fills while the previous one runs.
    """

    def __init__(
        self,
        infer: Infer,
        max_batch: Callable[[str], int],
        max_delay: float = 0.002,
        max_in_flight: int = 2,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._infer = infer
        self._max_batch = max_batch
        self.max_delay = max_delay
        self._slots = max_in_flight
        self._models: dict[tuple[str, str], _ModelQueue] = {}
        self._on_batch = on_batch
        self._running: set[asyncio.Task[None]] = set()

    async def infer(
        self, model: str, faces: np.ndarray, mask: str = "mask"
    ) -> tuple[np.ndarray, np.ndarray]:
        state = self._models.setdefault((model, mask), _ModelQueue())
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._collect(model, mask, state))
        future: asyncio.Future[tuple[np.ndarray, np.ndarray]] = (
            asyncio.get_running_loop().create_future()
        )
        state.queue.put_nowait(_Pending(faces, future))
        return await future

    async def _collect(self, model: str, mask: str, state: _ModelQueue) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self._slots)
        limit = self._max_batch(model)
        while True:
            batch = [await state.queue.get()]
            count = len(batch[0].faces)
            deadline = loop.time() + self.max_delay
            while count < limit:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(state.queue.get(), remaining)
                except TimeoutError:
                    break
                batch.append(item)
                count += len(item.faces)
            await slots.acquire()
            task = asyncio.create_task(self._run(model, mask, batch, limit))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _run(self, model: str, mask: str, batch: list[_Pending], limit: int) -> None:
        live = [p for p in batch if not p.future.done()]
        if not live:
            return
        faces = np.concatenate([p.faces for p in live])
        if self._on_batch is not None:
            self._on_batch(len(live), len(faces))
        try:
            parts = [
                await self._infer(model, faces[i : i + limit], mask)
                for i in range(0, len(faces), limit)
            ]
            swapped = np.concatenate([p[0] for p in parts])
            masks = np.concatenate([p[1] for p in parts])
        except Exception as exc:
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        start = 0
        for p in live:
            end = start + len(p.faces)
            if not p.future.done():
                p.future.set_result((swapped[start:end], masks[start:end]))
            start = end

    async def close(self) -> None:
        for state in self._models.values():
            if state.task is not None:
                state.task.cancel()
        for task in list(self._running):
            task.cancel()
