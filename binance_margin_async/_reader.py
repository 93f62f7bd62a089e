"""The bounded pull-style reader behind every ``events()``: the stream's and the bus consumer's.

A producer offers items (:meth:`QueueReader._offer`); the reader's loop awaits them in order. When
the reader falls ``maxsize`` items behind, the items already queued are still returned, then
:class:`~.errors.EventQueueOverflow` is raised and the reader ends. A producer may also end it
(``StopAsyncIteration`` once drained) or fail it (the error is raised once drained). Subclasses
add ``__anext__`` (what an item yields, e.g. the bus's position tracking) and ``close``.

This is shell code (it awaits an asyncio future), so it is not in the pure :mod:`._streamcore`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from .errors import EventQueueOverflow

__all__ = ["QueueReader"]

T = TypeVar("T")


class QueueReader(Generic[T]):
    """Waiter, bound, end and failure of one reader; ``_next`` is its ``__anext__`` core."""

    __slots__ = ("_closed", "_failure", "_maxsize", "_overflowed", "_queue", "_waiter")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._queue: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False
        self._failure: Exception | None = None

    async def _next(self) -> T:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._overflowed:
                self._overflowed = False
                self._closed = True
                raise EventQueueOverflow(
                    f"events() reader fell more than {self._maxsize} events behind; later events "
                    "were not queued for it. Call events() again and resynchronise."
                )
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def _offer(self, item: T) -> bool:
        if len(self._queue) >= self._maxsize:
            self._overflowed = True
            self._wake()
            return False
        self._queue.append(item)
        self._wake()
        return True

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        """End the reader with ``error``, raised once the queued items are consumed."""
        self._failure = error
        self._end()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
