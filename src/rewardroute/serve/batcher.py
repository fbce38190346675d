"""Micro-batching: concurrent callers' items go through one model forward pass.

Callers `await batcher.submit(items)`. One background task forms batches from whole
submissions, in arrival order, up to `max_batch` items (a submission larger than that runs
alone), and runs `fn(batch) -> outputs` in a one-thread executor, off the event loop. While a
batch runs, new submissions queue up and form the next one, so batches grow with load by
themselves; `window_s` additionally holds the first submission that long for company.

Failure isolation: when a batch's forward pass fails, each of its items runs again alone, so
one bad item fails only its own caller, with a `RowError` naming its index in that caller's
submission; every other caller gets its results. The traceback goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


log = logging.getLogger("rewardroute.serve")


class BatcherClosed(RuntimeError):
    """The server is shutting down."""


class RowError(RuntimeError):
    """Item `index` of a submission failed when it ran alone: the item, not the batch, is bad."""

    def __init__(self, index: int, cause: BaseException):
        super().__init__(f"item {index} failed: {type(cause).__name__}: {cause}")
        self.index, self.cause = index, cause


@dataclass
class _Job(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[list[In]], Sequence[Out]], executor: Executor, *, max_batch: int = 32,
                 window_s: float = 0.0, on_batch: Callable[[int], None] | None = None):
        self.fn = fn
        self.executor = executor
        self.max_batch = max_batch
        self.window_s = window_s
        self.on_batch = on_batch  # told the size of every batch (metrics)
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: list[_Job] = []  # the batch in the executor now
        self._closed = False

    async def submit(self, items: Sequence[In]) -> list[Out]:
        if self._closed:
            raise BatcherClosed("the server is shutting down")
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if not items:
            return []
        job = _Job(items, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._wake.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._jobs[0].arrived + self.window_s - time.monotonic()
            if wait > 0 and sum(len(j.items) for j in self._jobs) < self.max_batch:
                await asyncio.sleep(wait)
            batch = self._running = self._take()
            if not batch:
                continue
            flat = [x for job in batch for x in job.items]
            if self.on_batch is not None:
                self.on_batch(len(flat))
            try:
                outputs = await self._call(loop, flat)
            except Exception:
                log.warning("a batch of %d items failed; running its items one by one", len(flat), exc_info=True)
                for job in batch:
                    await self._one_by_one(loop, job)
                continue
            start = 0
            for job in batch:
                n = len(job.items)
                if not job.future.done():  # a caller that went away has a cancelled future
                    job.future.set_result(list(outputs[start:start + n]))
                start += n

    async def _call(self, loop: asyncio.AbstractEventLoop, items: list) -> Sequence:
        outputs = await loop.run_in_executor(self.executor, self.fn, items)
        if len(outputs) != len(items):
            raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(items)} items")
        return outputs

    async def _one_by_one(self, loop: asyncio.AbstractEventLoop, job: _Job) -> None:
        """Each item of `job` alone; the job fails with the first item that fails alone."""
        if job.future.done():
            return
        results = []
        for i, item in enumerate(job.items):
            try:
                results.extend(await self._call(loop, [item]))
            except Exception as e:
                log.error("item %d of a submission failed on its own", i, exc_info=True)
                if not job.future.done():
                    job.future.set_exception(RowError(i, e))
                return
        if not job.future.done():
            job.future.set_result(results)

    def _take(self) -> list[_Job]:
        """Whole jobs from the front, up to max_batch items (at least one job); skips cancelled."""
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if job.future.done():
                self._jobs.popleft()
                continue
            if batch and size + len(job.items) > self.max_batch:
                break
            batch.append(self._jobs.popleft())
            size += len(job.items)
        return batch

    async def close(self) -> None:
        """Stop taking work; callers still queued get `BatcherClosed`."""
        self._closed = True
        for job in [*self._jobs, *self._running]:
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the server is shutting down"))
        self._jobs.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
