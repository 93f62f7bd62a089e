"""Asyncio client for Binance Margin (cross and isolated).

REST SAPI, user-data streams, a weight-aware limiter shared by both, and an in-process fake
exchange (:mod:`binance_margin_async.testing`). Docs: https://developers.binance.com/docs/margin_trading
"""

__version__ = "0.1.0"
