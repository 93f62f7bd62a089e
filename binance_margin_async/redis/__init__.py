"""Many processes, one account: the pieces shared through Redis (the optional ``[redis]`` extra).

* :class:`RedisEventBus` (``._bus``): one process per account runs the user-data stream and
  publishes every event to a Redis Stream; any number of consumers in other processes or hosts read
  the same typed events with the stream's ``on(...)`` / ``async for`` API, and resume where they
  stopped after a restart.
* :class:`RedisRateLimiter` (``._limiter``): the rate limiter's budgets (per IP, per account)
  shared by every process and host, one atomic Lua script per request.

Install with ``pip install 'binance-margin-async[redis]'`` (the maintained ``redis`` asyncio
client, redis-py). Any Redis-compatible server works (Redis, Valkey); see the README section
"Running many processes".

Names resolve lazily, so importing this package does not import redis-py until a class is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# One entry per public class: name -> private module of this package.
_EXPORTS = {
    "RedisEventBus": "._bus",
    # What RedisEventBus hands out, for annotations.
    "BusConsumer": "._bus",
    "BusEventIterator": "._bus",
    "BusPublisher": "._bus",
    "RedisRateLimiter": "._limiter",
}

__all__ = ["BusConsumer", "BusEventIterator", "BusPublisher", "RedisEventBus", "RedisRateLimiter"]

if TYPE_CHECKING:
    from ._bus import BusConsumer, BusEventIterator, BusPublisher, RedisEventBus
    from ._limiter import RedisRateLimiter


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "redis":
            raise ModuleNotFoundError(
                f"{name} needs redis-py: pip install 'binance-margin-async[redis]'", name="redis"
            ) from exc
        raise
    globals()[name] = value
    return value
