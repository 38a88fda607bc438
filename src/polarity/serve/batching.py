"""Getting texts to the model: admission, micro-batching and one model thread with lanes.

- :class:`Admission` counts the texts admitted and not yet answered; past ``max_queue`` a
  request is refused at once (:class:`Overloaded`, 503), before it spends rate-limit quota.
- :class:`MicroBatcher`: concurrent single requests share one model call. One collector task
  takes the first waiting text, then whatever else arrives within ``max_wait_ms`` (up to
  ``max_batch``).
- :class:`ModelRunner` runs predictor calls on one dedicated thread (the model is not
  re-entrant), plain calls before reasoning ones: a reason costs up to 48 extra passes, so
  reasoning work is cut into small calls and a plain request waits for at most one of them
  (a 256-text request with reasons used to hold the model for 70 s). Long plain requests are
  cut the same way, by tokens (``slice_tokens``), so a request of long texts lets short ones
  in between its slices. A call whose client has gone is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from polarity.contract import Prediction
from polarity.serve.errors import Overloaded

PLAIN, REASONING = 0, 1
#: Texts per reasoning call: the longest a plain request may wait behind reasoning work.
REASONING_CHUNK = 2


class Admission:
    """Texts admitted and not yet answered, bounded (a request never holds more texts than
    the queue: ``Settings.texts_per_request``)."""

    def __init__(self, limit: int):
        self.limit, self.inflight = limit, 0

    def take(self, texts: int) -> None:
        if self.inflight + texts > self.limit:
            raise Overloaded("too many texts are waiting for the model; retry shortly",
                             {"Retry-After": "1"})
        self.inflight += texts

    def give_back(self, texts: int) -> None:
        self.inflight -= texts


class ModelRunner:
    """Predictor calls on one thread, taken in lane order (plain before reasoning)."""

    def __init__(self, predict: Callable[..., list[Prediction]], batch_size: int,
                 slice_tokens: int = 2048):
        self.predict = predict
        self.batch_size, self.slice_tokens = batch_size, slice_tokens
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._waiting: dict[int, deque[asyncio.Future]] = {PLAIN: deque(), REASONING: deque()}
        self._busy = False

    async def run(self, texts: Sequence[str], reasoning: bool,
                  work: Sequence[int] | None = None) -> list[Prediction]:
        """Predict ``texts``, in slices that each wait their turn: 2 texts at a time with
        reasons, else at most ``batch_size`` texts and ``slice_tokens`` tokens of ``work``
        (per text) at a time, so a long request lets short ones in between its slices."""
        out: list[Prediction] = []
        for chunk in self._slices(len(texts), reasoning, work):
            out += await self._call([texts[i] for i in chunk], reasoning,
                                    REASONING if reasoning else PLAIN)
        return out

    def _slices(self, n: int, reasoning: bool, work: Sequence[int] | None) -> list[range]:
        if reasoning:
            return [range(s, min(n, s + REASONING_CHUNK)) for s in range(0, n, REASONING_CHUNK)]
        if work is None:
            return [range(n)]
        out, start, tokens = [], 0, 0
        for i in range(n):
            if i > start and (tokens + work[i] > self.slice_tokens
                              or i - start >= self.batch_size):
                out.append(range(start, i))
                start, tokens = i, 0
            tokens += work[i]
        return [*out, range(start, n)] if n else out

    async def _call(self, texts: list[str], reasoning: bool, lane: int) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        self._waiting[lane].append(turn)
        self._next()
        try:
            await turn
        except asyncio.CancelledError:  # the client has gone: the call never runs
            if turn.done() and not turn.cancelled():  # it was this call's turn: pass it on
                self._done(None)
            raise
        work = loop.run_in_executor(self.executor, lambda: self.predict(
            texts, batch_size=self.batch_size, include_reasoning=reasoning))
        # The thread cannot be stopped: the next call starts when this one has ended, even
        # if its client has gone.
        work.add_done_callback(self._done)
        return await asyncio.shield(work)

    def _done(self, _) -> None:
        self._busy = False
        self._next()

    def _next(self) -> None:
        if self._busy:
            return
        for lane in (PLAIN, REASONING):
            while self._waiting[lane]:
                turn = self._waiting[lane].popleft()
                if not turn.done():
                    self._busy = True
                    turn.set_result(None)
                    return

    def close(self) -> None:
        self.executor.shutdown(wait=True)


@dataclass
class _Item:
    text: str
    reasoning: bool
    future: asyncio.Future


class MicroBatcher:
    def __init__(self, runner: ModelRunner, max_batch: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int], None] | None = None):
        self.runner = runner
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.on_batch = on_batch
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._collect(), name="micro-batcher")

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    async def submit(self, text: str, reasoning: bool = False) -> Prediction:
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Item(text, reasoning, future))
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
            # Plain and reasoning texts are separate calls in separate lanes. The collector
            # waits for the plain call, so that what arrives meanwhile forms the next batch,
            # but not for reasoning work, which runs between plain calls.
            plain = None
            for wants in (False, True):
                items = [i for i in batch if i.reasoning == wants]
                if items:
                    task = asyncio.create_task(self._run(items, wants))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                    plain = task if not wants else plain
            if plain is not None:
                await asyncio.wait({plain})

    async def _run(self, items: list[_Item], reasoning: bool) -> None:
        items = [i for i in items if not i.future.cancelled()]  # their clients have gone
        if not items:
            return
        if self.on_batch:
            self.on_batch(len(items))
        try:
            preds = await self.runner.run([i.text for i in items], reasoning)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, pred in zip(items, preds, strict=True):
            if not item.future.done():
                item.future.set_result(pred)

    async def drain(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the collector (graceful shutdown)."""
        deadline = time.perf_counter() + timeout
        while (not self.queue.empty() or self._running) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
