"""Micro-batching: concurrent single requests share one model call.

Requests wait in a bounded queue; one collector task takes the first waiting item, then
whatever else arrives within ``max_wait_ms`` (up to ``max_batch``), and runs the model in
a single worker thread so the event loop never blocks. A full queue answers
:class:`Overloaded` at once instead of growing without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from polarity.prediction import Prediction


class Overloaded(Exception):
    """The queue is full: the caller should answer 503."""


@dataclass
class _Item:
    text: str
    reasoning: bool
    future: asyncio.Future


class ModelRunner:
    """Runs predictor calls on one dedicated thread (the model is not re-entrant)."""

    def __init__(self, predict: Callable[..., list[Prediction]], batch_size: int):
        self.predict = predict
        self.batch_size = batch_size
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def run(self, texts: Sequence[str], reasoning: bool) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, lambda: self.predict(list(texts), batch_size=self.batch_size,
                                                include_reasoning=reasoning))

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class MicroBatcher:
    def __init__(self, runner: ModelRunner, max_batch: int = 32, max_wait_ms: float = 2.0,
                 max_queue: int = 1024, on_batch: Callable[[int], None] | None = None):
        self.runner = runner
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max_queue)
        self.on_batch = on_batch
        self._task: asyncio.Task | None = None
        self._busy = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._collect(), name="micro-batcher")

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    async def submit(self, text: str, reasoning: bool = False) -> Prediction:
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Item(text, reasoning, future))
        except asyncio.QueueFull:
            raise Overloaded from None
        return await future

    async def _collect(self) -> None:
        while True:
            first = await self.queue.get()
            batch = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(batch) < self.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                except TimeoutError:
                    break
            self._busy = True
            try:
                await self._run(batch)
            finally:
                self._busy = False

    async def _run(self, batch: list[_Item]) -> None:
        # Texts that want reasoning and those that do not go in separate calls: reasoning
        # costs one extra forward pass per word.
        for wants in (False, True):
            items = [i for i in batch if i.reasoning == wants and not i.future.cancelled()]
            if not items:
                continue
            if self.on_batch:
                self.on_batch(len(items))
            try:
                preds = await self.runner.run([i.text for i in items], wants)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, pred in zip(items, preds, strict=True):
                if not item.future.done():
                    item.future.set_result(pred)

    async def drain(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the collector (graceful shutdown)."""
        deadline = time.perf_counter() + timeout
        while (not self.queue.empty() or self._busy) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
