"""``python -m binance_margin_async demo|monitor`` (see :mod:`binance_margin_async.cli`)."""

import sys

from ._entry import demo_or_monitor

sys.exit(demo_or_monitor())
