"""Run the fake exchange standalone: ``python -m binance_margin_async.testing --port 8080``.

Prints the three URLs and the keys of a funded demo account, then serves until interrupted
(Ctrl-C). Point any Binance client at the URLs; the keys only work on this fake.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from .. import __version__
from .server import FakeExchange

#: The demo account's spot and cross-margin wallets.
DEMO_SPOT = {"USDT": "10000"}
DEMO_MARGIN = {"USDT": "10000", "BTC": "0.5"}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="binance-margin-fake",
        description="Serve an in-process fake Binance margin exchange on 127.0.0.1.",
        epilog="exit status: 0 done, 130 interrupted (Ctrl-C), 2 bad command line or busy port",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seed for keys and tokens")
    parser.add_argument(
        "--key-type",
        choices=("HMAC", "ED25519", "RSA"),
        default="HMAC",
        help="key type of the demo account (default: HMAC)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the exchange, print its URLs and demo keys, serve until cancelled."""
    async with FakeExchange(seed=args.seed, port=args.port) as exchange:
        creds = exchange.add_account(DEMO_SPOT, margin_balances=DEMO_MARGIN, key_type=args.key_type)
        lines = [
            f"REST:        {exchange.rest_url}",
            f"WS API:      {exchange.ws_api_url}",
            f"Risk stream: {exchange.risk_stream_url}",
            f"Demo account {creds.account_id} ({creds.key_type}): spot {DEMO_SPOT}, "
            f"cross margin {DEMO_MARGIN}",
            f"  api_key:     {creds.api_key}",
        ]
        if creds.api_secret is not None:
            lines.append(f"  api_secret:  {creds.api_secret}")
        if creds.private_key is not None:
            lines.append("  private_key:")
            lines.extend("    " + line for line in creds.private_key.splitlines())
        # The keys are printed on purpose: they exist only on this fake exchange.
        print("\n".join(lines), flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``binance-margin-fake``): 130 after Ctrl-C, 2 on a busy port."""
    args = _parse(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # Binding is the only I/O before serving: e.g. EADDRINUSE for a port already taken.
        print(
            f"binance-margin-fake: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
