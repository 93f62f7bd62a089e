"""Asyncio client for Binance Margin (cross and isolated).

REST SAPI (:class:`MarginClient`), user-data streams (:meth:`MarginClient.user_stream`), special-key
orders over the WebSocket API (:meth:`MarginClient.trading_session`), one
weight-aware :class:`RateLimiter` shared by both, and an in-process fake exchange
(:mod:`binance_margin_async.testing`).

Docs: https://developers.binance.com/docs/margin_trading
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names resolve lazily (as in python-websockets): `import binance_margin_async.events`
# stays cheap and never drags aiohttp in.
_EXPORTS = {
    "MarginClient": ".rest",
    "RateLimiter": ".ratelimit",
    "UserDataStream": ".stream",
    "StreamConfig": ".stream",
    "TradingSession": ".trading",
    "TradingSessionConfig": ".trading",
    "SymbolInfo": ".symbols",
    "AccountMirror": ".mirror",
    "BinanceError": ".errors",
    "BinanceAPIError": ".errors",
    "ParameterError": ".errors",
    "RateLimited": ".errors",
    "IPBanned": ".errors",
    "ExecutionStatusUnknown": ".errors",
    "TransportError": ".errors",
    "InvalidResponse": ".errors",
    "RedirectRefused": ".errors",
    "new_client_order_id": ".rest",
}

__all__ = [
    "AccountMirror",
    "BinanceAPIError",
    "BinanceError",
    "ExecutionStatusUnknown",
    "IPBanned",
    "InvalidResponse",
    "MarginClient",
    "ParameterError",
    "RateLimited",
    "RateLimiter",
    "RedirectRefused",
    "StreamConfig",
    "SymbolInfo",
    "TradingSession",
    "TradingSessionConfig",
    "TransportError",
    "UserDataStream",
    "new_client_order_id",
]

if TYPE_CHECKING:
    from .errors import (
        BinanceAPIError,
        BinanceError,
        ExecutionStatusUnknown,
        InvalidResponse,
        IPBanned,
        ParameterError,
        RateLimited,
        RedirectRefused,
        TransportError,
    )
    from .mirror import AccountMirror
    from .ratelimit import RateLimiter
    from .rest import MarginClient, new_client_order_id
    from .stream import StreamConfig, UserDataStream
    from .symbols import SymbolInfo
    from .trading import TradingSession, TradingSessionConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
