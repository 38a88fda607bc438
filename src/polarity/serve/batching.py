"""Getting texts to the model: admission, then one model thread shared fairly between keys.

- :class:`Admission` counts the texts admitted and not yet answered; past ``max_queue`` a
  request is refused at once (:class:`Overloaded`, 503), before it spends rate-limit quota.
- :class:`ModelRunner` runs predictor calls on one dedicated thread (the model is not
  re-entrant). Every text waits in its key's own queue; when the thread is free, the next
  call is made by **deficit round robin** between the keys with work waiting, priced by
  tokens (:class:`FairQueue`): each key in turn earns 256 tokens of credit and sends
  texts while it has credit, a key that had nothing waiting first. So a key's work
  waits behind its own work, never in front of everyone else's: eight parallel requests of
  10,000-character texts from one key no longer queue ahead of another key's short text
  (they used to: 7 s). Texts of several keys still
  share a call (micro-batching), up to ``batch_size`` texts and ``slice_tokens`` tokens; a
  text is never split, so a call holds one long text at most.
- A long call does not hold everyone: between two of its batches (the backends call
  :func:`polarity.backends.interleave.between_batches`) the model thread first scores the
  waiting texts of keys that are not in the running call and have credit left, no more
  tokens than the batch just run (nor :data:`INTERLEAVE_TOKENS`), so another key's "I love
  it" waits for one batch of a long review's sentences, not for the whole review, and the
  running call keeps at least half of the thread.
- Plain calls go before reasoning calls (two lanes, each with its own round robin): a reason
  costs up to 48 extra passes, so reasoning calls hold at most :data:`REASONING_CHUNK`
  texts and ``slice_tokens`` tokens, and a plain request waits for at most one of them.
- A text whose client has gone is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from polarity.backends import interleave
from polarity.contract import Prediction
from polarity.serve.errors import Overloaded

PLAIN, REASONING = 0, 1
#: Texts per reasoning call: the most a plain request may wait behind reasoning work.
REASONING_CHUNK = 2
#: The most tokens of other keys' texts scored between two batches of a running call (and
#: never more than the batch just run).
INTERLEAVE_TOKENS = 256


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


@dataclass
class _Item:
    text: str
    tokens: int
    future: asyncio.Future
    key: str = ""


class FairQueue:
    """One lane's waiting texts: a queue per key, and deficit round robin between keys with
    sparse keys first, as FQ-CoDel schedules flows (RFC 8290).

    A key that had nothing waiting joins the *new* keys with ``quantum`` tokens of credit.
    ``take`` visits new keys before old ones, one text per key per pass: a key with credit
    sends its oldest text and pays its tokens (going below zero for a long text); a key
    without credit earns ``quantum`` more and moves to the end of the *old* keys. So every
    key with work waiting gets about the same tokens of model time, whatever the size or
    number of its requests, and a key that sends now and then is served in the next call.
    The quantum is small next to a long text, so a key that just sent one is in debt for
    several passes, in which the others go first. A new key whose queue empties moves to the
    old keys with its debt (a flood of parallel requests often empties its queue for a
    moment); an old key found empty pays off a quantum of its debt a pass, as if it still had
    its turn, and leaves once out of debt, its credit with it (a key that sends long texts
    one at a time, so that its queue is empty at every call, used to be forgiven its debt
    each time and got more of the model than keys that always had work waiting)."""

    def __init__(self, quantum: int = 256):
        self.quantum = quantum
        self.queues: dict[str, deque[_Item]] = {}
        self.new: deque[str] = deque()
        self.old: deque[str] = deque()
        self.credit: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def put(self, key: str, item: _Item) -> None:
        if key not in self.queues:
            self.queues[key] = deque()
            self.new.append(key)
            self.credit[key] = self.quantum
        self.queues[key].append(item)

    def take(self, max_texts: int, max_tokens: int) -> list[_Item]:
        """The next call: at most ``max_texts`` texts and ``max_tokens`` tokens (its first
        text always fits: a text is never split)."""
        call: list[_Item] = []
        tokens, moved = 0, True
        while moved and len(call) < max_texts and tokens < max_tokens:
            moved = False  # a pass that neither sends nor pays credit ends the call
            for key in [*self.new, *self.old]:
                queue = self.queues[key]
                while queue and queue[0].future.done():  # its client has gone: dropped
                    queue.popleft()
                if not queue:
                    self._emptied(key)
                elif self.credit[key] <= 0:
                    self.credit[key] += self.quantum
                    self._to_old(key)
                    moved = True
                elif not call or tokens + queue[0].tokens <= max_tokens:
                    item = queue.popleft()
                    call.append(item)
                    tokens += item.tokens
                    self.credit[key] -= item.tokens
                    moved = True
                    if len(call) >= max_texts or tokens >= max_tokens:
                        break
        return call

    def take_between(self, max_texts: int, max_tokens: int, skip: frozenset[str]
                     ) -> list[_Item]:
        """What may run between two batches of another call: the oldest texts of keys with
        credit left and not in ``skip``, at most ``max_texts`` and ``max_tokens`` in all.
        It pays credit but earns none and moves no key: a key in debt waits for its turn
        in :meth:`take`, and the round robin's order is the same as without it."""
        call: list[_Item] = []
        tokens = 0
        for key in [*self.new, *self.old]:
            queue = self.queues[key]
            while (key not in skip and queue and self.credit[key] > 0
                   and len(call) < max_texts and tokens + queue[0].tokens <= max_tokens):
                item = queue.popleft()
                if item.future.done():  # its client has gone: dropped
                    continue
                call.append(item)
                tokens += item.tokens
                self.credit[key] -= item.tokens
        return call

    def _to_old(self, key: str) -> None:
        (self.new if key in self.new else self.old).remove(key)
        self.old.append(key)

    def _emptied(self, key: str) -> None:
        if key in self.new:
            self._to_old(key)
        elif self.credit[key] < 0:  # still in debt: it pays a quantum a pass while idle
            self.credit[key] += self.quantum
        else:
            self.old.remove(key)
            del self.queues[key], self.credit[key]


class ModelRunner:
    """Predictor calls on one thread: plain before reasoning, fair between keys, and other
    keys' short texts between the batches of a long call.

    The lanes are shared by the event loop (which queues texts and starts calls) and the
    model thread (which takes short texts between batches), so they are used under a lock;
    results reach the texts' futures on the event loop."""

    def __init__(self, predict: Callable[..., list[Prediction]], batch_size: int,
                 slice_tokens: int = 2048, max_wait_ms: float = 0.0,
                 on_batch: Callable[[int], None] | None = None):
        self.predict = predict
        self.batch_size, self.slice_tokens = batch_size, slice_tokens
        self.max_wait, self.on_batch = max_wait_ms / 1000, on_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model",
                                           initializer=interleave.install,
                                           initargs=(self._between_batches,))
        self.lanes = {PLAIN: FairQueue(), REASONING: FairQueue()}
        self._lock = threading.Lock()
        self._busy = False
        self._running: frozenset[str] = frozenset()  # keys of the running call
        self._nested = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def depth(self) -> int:
        """Texts waiting for a model call (not counting the one running)."""
        with self._lock:
            return sum(len(lane) for lane in self.lanes.values())

    async def run(self, texts: Sequence[str], reasoning: bool,
                  work: Sequence[int] | None = None, key: str = "") -> list[Prediction]:
        """Predict ``texts`` for ``key``; ``work``: tokens per text (the price in the round
        robin; None: characters). If the caller is cancelled (its client has gone), its
        texts that have not run are dropped."""
        loop = self._loop = asyncio.get_running_loop()
        lane = self.lanes[REASONING if reasoning else PLAIN]
        futures = []
        with self._lock:
            for i, text in enumerate(texts):
                future = loop.create_future()
                tokens = max(1, work[i] if work is not None else len(text))
                lane.put(key, _Item(text, tokens, future, key))
                futures.append(future)
        self._wake()
        return list(await asyncio.gather(*futures))

    def _wake(self) -> None:
        """Start the next call if the thread is free, after ``max_wait`` for company."""
        if self._busy or self._timer is not None:
            return
        if self.max_wait > 0:
            self._timer = asyncio.get_running_loop().call_later(self.max_wait, self._timed)
        else:
            self._start()

    def _timed(self) -> None:
        self._timer = None
        if not self._busy:
            self._start()

    def _start(self) -> None:
        for reasoning, lane in ((False, self.lanes[PLAIN]), (True, self.lanes[REASONING])):
            limit = REASONING_CHUNK if reasoning else self.batch_size
            with self._lock:
                call = lane.take(limit, self.slice_tokens)
            if call:
                self._busy = True
                self._running = frozenset(item.key for item in call)
                # The thread cannot be stopped: the next call starts when this one has
                # ended, even if every client of this one has gone.
                try:
                    task = asyncio.get_running_loop().run_in_executor(
                        self.executor, self._call, call, reasoning)
                except RuntimeError as exc:  # closed: the call is answered, never lost
                    _settle(call, None, exc)
                    self._busy, self._running = False, frozenset()
                    return
                task.add_done_callback(self._done)
                return

    def _call(self, items: list[_Item], reasoning: bool) -> None:
        """On the model thread: one predictor call, its results (or its error) handed to the
        event loop; nothing it raises reaches the caller (a backend, for a nested call)."""
        try:
            if self.on_batch:
                self.on_batch(len(items))
            preds = self.predict([i.text for i in items], batch_size=self.batch_size,
                                 include_reasoning=reasoning)
        except Exception as exc:  # noqa: BLE001 - handed to every text of the call
            self._loop.call_soon_threadsafe(_settle, items, None, exc)
            return
        self._loop.call_soon_threadsafe(_settle, items, preds, None)

    def _between_batches(self, work: int) -> None:
        """On the model thread, after a batch of ``work`` tokens of the running call: plain
        texts of keys with credit left and not in the call run first, at most as many tokens
        as that batch (and :data:`INTERLEAVE_TOKENS`), so the running call keeps at least
        half of the thread. Never nested deeper."""
        if self._nested:
            return
        with self._lock:
            items = self.lanes[PLAIN].take_between(
                self.batch_size, min(work, INTERLEAVE_TOKENS), self._running)
        if items:
            self._nested = True
            try:
                self._call(items, False)
            finally:
                self._nested = False

    def _done(self, _) -> None:
        self._busy = False
        self._running = frozenset()
        self._start()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued text has run (graceful shutdown)."""
        deadline = time.perf_counter() + timeout
        while (self.depth or self._busy) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _settle(items: list[_Item], preds: list[Prediction] | None,
            error: Exception | None) -> None:
    """On the event loop: each text's answer (or the call's error) to its waiting request."""
    for i, item in enumerate(items):
        if item.future.done():
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(preds[i])
