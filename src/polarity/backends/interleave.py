"""Points between the batches of one call where the caller may run other work first.

A backend that scores a call in several batches (the pieces of a long text, CTranslate2's
groups of one length) calls :func:`between_batches` after every batch but the last, with the
tokens of what it scored since the last such point (the hook's measure of how much other
work it may run there without holding the call back more than half of the time). It does
nothing unless the thread has a hook (:func:`install`): the service's model thread installs
one that scores the short texts of other keys that arrived meanwhile (:mod:`polarity.serve
.batching`), so a 10,000-character review, read as several batches of its sentences, delays
another key's "I love it" by one batch instead of the whole review.

Why a hook and not smaller calls: a long text's verdict combines all of its pieces (and the
long-text reader reads the whole text), so the call stays whole and exact; the batches of a
call are scored independently, so running other work between them changes no answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_local = threading.local()


def install(hook: Callable[[int], None] | None) -> None:
    """Run ``hook(work)`` (None: nothing) at every point between batches on this thread."""
    _local.hook = hook


def between_batches(work: int) -> None:
    """Called by a backend between two batches of one call, ``work`` tokens after the last
    such point."""
    hook = getattr(_local, "hook", None)
    if hook is not None:
        hook(work)
