"""``python -m binance_margin_async demo|monitor`` (see :mod:`binance_margin_async.cli`)."""

import sys

from .cli import main

sys.exit(main())
