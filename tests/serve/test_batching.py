"""Fair scheduling between keys: a key's work waits behind its own work, not in front of
everyone else's (deficit round robin priced by tokens, sparse keys first)."""

import asyncio
import time

from serve_helpers import WordCounter

from polarity.backends import interleave
from polarity.serve.batching import FairQueue, ModelRunner, _Item

LONG, SHORT = 2440, 3  # tokens of a 10,000-character review and of "I love it"


class Recorder(WordCounter):
    """Records the texts of every call; a call takes 1 ms per 100 tokens of its texts
    (a text's tokens are the number after its key, ``"a7:2440"``)."""

    def __init__(self):
        super().__init__()
        self.order: list[list[str]] = []

    def predict(self, texts, batch_size=32, include_reasoning=False):
        self.order.append(list(texts))
        time.sleep(sum(int(t.split(":")[1]) for t in texts) / 100_000)
        return super().predict(texts, batch_size, include_reasoning)


def _serve(model, arrivals, **runner):
    """Run ``arrivals`` (delay in s, key, texts, tokens a text) against one ModelRunner."""
    async def scenario():
        runner_ = ModelRunner(model.predict, **{"batch_size": 32, "slice_tokens": 2048,
                                                 **runner})

        async def send(delay, key, texts, tokens):
            await asyncio.sleep(delay)
            return await runner_.run(texts, False, [tokens] * len(texts), key)

        await asyncio.gather(*(send(*a) for a in arrivals))
        runner_.close()

    asyncio.run(scenario())
    return model.order


def test_a_short_text_of_another_key_runs_next_not_after_the_flood():
    # key a: 8 parallel requests of long texts; key b's short text arrives while a's first
    # call runs. FIFO served it ninth (7 s in the service); now it is the very next call.
    model = Recorder()
    flood = [(0, "a", [f"a{i}:{LONG}"], LONG) for i in range(8)]
    order = _serve(model, [*flood, (0.01, "b", [f"b:{SHORT}"], SHORT)])
    assert order[0] == [f"a0:{LONG}"] and order[1] == [f"b:{SHORT}"]
    assert [c for call in order[2:] for c in call] == [f"a{i}:{LONG}" for i in range(1, 8)]


def test_two_busy_keys_take_turns_by_tokens_not_by_requests():
    # a sends 2,440-token texts, c sends 200-token ones, both many: per round each gets
    # about one quantum (256 tokens) of model time, so c's texts are not stuck behind a's
    # and a is not starved by c's many small ones.
    model = Recorder()
    a = [(0, "a", [f"a{i}:{LONG}"], LONG) for i in range(4)]
    c = [(0, "c", [f"c{i}:200" for i in range(40)], 200)]
    order = _serve(model, [*a, *c])
    served = {"a": 0, "c": 0}
    for call in order[:6]:
        for text in call:
            served[text[0]] += int(text.split(":")[1])
    assert all(len(call) == 1 or all(t[0] == "c" for t in call) for call in order)
    assert 0.5 < served["a"] / served["c"] < 2  # close to equal tokens
    assert order[0][0].startswith("a") and order[1][0].startswith("c")  # alternating


def test_short_texts_of_several_keys_share_one_call():
    model = Recorder()
    first = (0, "x", [f"x:{LONG}"], LONG)  # holds the thread while the others queue
    others = [(0.005, k, [f"{k}{i}:{SHORT}" for i in range(3)], SHORT) for k in "pqr"]
    order = _serve(model, [first, *others])
    assert len(order) == 2 and sorted(order[1]) == sorted(
        f"{k}{i}:{SHORT}" for k in "pqr" for i in range(3))
    assert [t[0] for t in order[1][:3]] == ["p", "q", "r"]  # one text a key per pass


def test_a_call_never_exceeds_its_token_budget_except_for_one_long_text():
    queue = FairQueue(quantum=2048)
    loop = asyncio.new_event_loop()
    for i, tokens in enumerate([1500, 1000, LONG, 10]):
        queue.put(str(i), _Item(str(i), tokens, loop.create_future()))
    calls = [[i.text for i in queue.take(32, 2048)] for _ in range(3)]
    loop.close()
    assert calls == [["0", "3"], ["1"], ["2"]]  # "1" and "2" wait: they do not fit


def test_a_key_keeps_its_debt_for_a_moment_and_its_credit_never():
    queue = FairQueue(quantum=100)
    loop = asyncio.new_event_loop()
    queue.put("a", _Item("a1", 250, loop.create_future()))
    assert [i.text for i in queue.take(32, 1000)] == ["a1"]
    assert queue.credit["a"] == -150 and list(queue.old) == ["a"]  # emptied, still in debt
    queue.put("a", _Item("a2", 10, loop.create_future()))  # its next parallel request
    queue.put("b", _Item("b1", 10, loop.create_future()))
    assert [i.text for i in queue.take(1, 1000)] == ["b1"]  # b first: a pays its debt
    assert [i.text for i in queue.take(32, 1000)] == ["a2"]
    assert queue.take(32, 1000) == [] and not queue.credit  # found empty: gone, credit too
    loop.close()


def test_reasoning_calls_hold_two_short_texts_or_one_long_one():
    # a reasoning batch of 2 long texts held everyone 3.8 s as one call; now each is a call
    async def scenario():
        model = Recorder()
        runner = ModelRunner(model.predict, batch_size=32, slice_tokens=2048)
        await asyncio.gather(
            runner.run([f"l{i}:{LONG}" for i in range(2)], True, [LONG, LONG], "a"),
            runner.run([f"s{i}:{SHORT}" for i in range(3)], True, [SHORT] * 3, "b"))
        runner.close()
        return model.order

    order = asyncio.run(scenario())
    assert all(len(call) <= 2 for call in order)
    assert [len(call) for call in order if call[0].startswith("l")] == [1, 1]


class Batched(Recorder):
    """As :class:`Recorder`, but a call is read in batches of at most 800 tokens, with the
    backends' point between batches after each but the last (as windows.py does)."""

    def predict(self, texts, batch_size=32, include_reasoning=False):
        self.order.append(list(texts))
        tokens = sum(int(t.split(":")[1]) for t in texts)
        for start in range(0, tokens, 800):
            if start:
                interleave.between_batches(800)
            time.sleep(min(800, tokens - start) / 20_000)  # 40 ms a full batch
        return WordCounter.predict(self, texts, batch_size, include_reasoning)


def test_another_keys_short_text_runs_between_the_batches_of_a_long_call():
    # a 10,000-character review is 4 batches here (160 ms); "I love it" of key b, sent
    # during its first batch, used to wait for all of them
    async def scenario():
        model = Batched()
        runner = ModelRunner(model.predict, batch_size=32, slice_tokens=2048)
        done: dict[str, float] = {}

        async def send(delay, key, text, tokens):
            await asyncio.sleep(delay)
            sent = time.perf_counter()
            await runner.run([text], False, [tokens], key)
            done[text] = time.perf_counter() - sent

        await asyncio.gather(send(0, "a", f"long:{LONG}", LONG),
                             send(0.01, "a", f"a-short:{SHORT}", SHORT),
                             send(0.01, "b", f"b-short:{SHORT}", SHORT),
                             send(0.01, "c", f"c-long:{LONG}", LONG))
        runner.close()
        return model.order, done

    order, done = asyncio.run(scenario())
    # b's text runs inside a's call; a's own short text and c's long one wait for its end
    assert order[:2] == [[f"long:{LONG}"], [f"b-short:{SHORT}"]]
    assert sorted(map(tuple, order[2:])) == [(f"a-short:{SHORT}",), (f"c-long:{LONG}",)]
    assert done[f"b-short:{SHORT}"] < 0.1 < done[f"a-short:{SHORT}"]


def test_a_key_that_sends_long_texts_one_at_a_time_keeps_its_debt():
    # its queue is empty at every call; it used to be forgiven its debt each time
    queue = FairQueue(quantum=256)
    loop = asyncio.new_event_loop()
    queue.put("a", _Item("a1", LONG, loop.create_future()))
    assert [i.text for i in queue.take(32, 4096)] == ["a1"]
    assert queue.take(32, 4096) == [] and queue.credit["a"] == 256 - LONG + 256  # pays, stays
    queue.put("a", _Item("a2", SHORT, loop.create_future()))
    queue.put("b", _Item("b1", SHORT, loop.create_future()))
    assert [i.text for i in queue.take(1, 4096)] == ["b1"]  # b first: a is still in debt
    loop.close()


def test_work_between_batches_pays_credit_but_earns_none_and_skips_the_running_keys():
    queue = FairQueue(quantum=256)
    loop = asyncio.new_event_loop()
    queue.put("a", _Item("a1", LONG, loop.create_future()))
    assert [i.text for i in queue.take(32, 4096)] == ["a1"]  # a is in debt now
    for key, text, tokens in [("a", "a2", SHORT), ("b", "b1", SHORT), ("b", "b2", 300),
                              ("c", "c1", 200), ("d", "d1", SHORT)]:
        queue.put(key, _Item(text, tokens, loop.create_future()))
    order = (list(queue.new), list(queue.old))
    taken = queue.take_between(32, 256, skip=frozenset({"d"}))
    # a owes, b's second text would pass the budget, c's fits after b1, d is running
    assert [i.text for i in taken] == ["b1", "c1"]
    assert (list(queue.new), list(queue.old)) == order and queue.credit["a"] < 0
    assert queue.credit["b"] == 256 - SHORT and queue.credit["c"] == 256 - 200
    loop.close()


def test_a_failure_between_batches_answers_its_own_texts_and_spares_the_running_call():
    async def scenario():
        model = Batched()
        failures = iter([False, True])  # the running call's metric works, the nested one's not

        def on_batch(size):
            if next(failures, False):
                raise RuntimeError("metrics broke")

        runner = ModelRunner(model.predict, batch_size=32, on_batch=on_batch)

        async def send(delay, key, text, tokens):
            await asyncio.sleep(delay)
            try:
                return await runner.run([text], False, [tokens], key)
            except RuntimeError as exc:
                return str(exc)

        out = await asyncio.wait_for(asyncio.gather(
            send(0, "a", f"long:{LONG}", LONG), send(0.01, "b", f"b:{SHORT}", SHORT)), 5)
        runner.close()
        return out

    long_answer, short_answer = asyncio.run(scenario())
    assert long_answer[0].label == "NEGATIVE" and short_answer == "metrics broke"


def test_a_call_started_after_close_is_answered_not_lost():
    async def scenario():
        runner = ModelRunner(WordCounter().predict, batch_size=32)
        runner.close()
        try:
            await asyncio.wait_for(runner.run(["good"], False, [1], "a"), 5)
        except RuntimeError as exc:
            return str(exc), runner._busy
        return "answered", runner._busy

    message, busy = asyncio.run(scenario())
    assert "shutdown" in message and not busy
