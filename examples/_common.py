"""Plumbing shared by the examples: command line, fake-or-real client, running until stopped.

Not part of the library; copy what you need. Every example accepts:

* ``--fake``: start a :class:`~binance_margin_async.testing.FakeExchange` in this process (REST,
  WebSocket API and risk stream on 127.0.0.1), fund an account on it and point the client there.
  No keys, no network.
* ``--duration SECONDS``: stop after that long; without it, run until Ctrl-C (exit status 130).
* ``--base-url``/``--ws-api-url``/``--risk-stream-url``: connect there instead of Binance
  production, e.g. to a standalone fake exchange (``binance-margin-fake``) with its demo keys.

Without ``--fake`` the client uses the keys in the environment: ``BINANCE_API_KEY`` plus either
``BINANCE_API_SECRET`` (HMAC) or ``BINANCE_PRIVATE_KEY_FILE`` (path to an Ed25519 or RSA PEM
key), read by :func:`binance_margin_async.cli.client_from_env`. The library itself never reads the
environment or files; that is the application's job, done here once at start-up. Secrets are
never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from binance_margin_async import MarginClient
from binance_margin_async.cli import (
    ENVIRONMENT_HELP,
    SetupError,
    add_connection_options,
    client_from_env,
)
from binance_margin_async.formatting import format_amount
from binance_margin_async.testing import FakeExchange

__all__ = [
    "SetupError",
    "Venue",
    "fmt",
    "make_parser",
    "open_venue",
    "run_main",
    "run_until_stopped",
]

# Seed of the fake exchange: reproducible keys and tokens from one run to the next.
_FAKE_SEED = 1
# Set when Ctrl-C ended `run_until_stopped`, so that `run_main` exits 130 after the clean shutdown.
_INTERRUPTED = threading.Event()


@dataclass(frozen=True, slots=True)
class Venue:
    """Where an example runs: the client, and the fake exchange behind it (``None`` on Binance)."""

    client: MarginClient
    exchange: FakeExchange | None


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every example shares (``--fake``, ``--duration``).

    ``doc`` is the example's module docstring; its first line describes the command.
    """
    parser = argparse.ArgumentParser(
        description=(doc or "").partition("\n")[0],
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--fake",
        action="store_true",
        help="run against an in-process fake exchange with scripted market activity",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until Ctrl-C)",
    )
    add_connection_options(parser)
    return parser


@contextlib.asynccontextmanager
async def open_venue(
    args: argparse.Namespace,
    *,
    margin_balances: Mapping[str, str] | None = None,
    isolated: Mapping[str, Mapping[str, str]] | None = None,
    env: Mapping[str, str] = os.environ,
) -> AsyncIterator[Venue]:
    """Yield a connected :class:`Venue`: the fake exchange with a funded account (``--fake``), or
    Binance (or the URLs given on the command line) with the keys of ``env``.

    ``margin_balances`` (cross margin wallet) and ``isolated`` (symbol → balances of that isolated
    account) fund the fake account; they are ignored on Binance, where the account is what it is.
    """
    async with contextlib.AsyncExitStack() as stack:
        exchange = None
        if args.fake:
            if args.base_url or args.ws_api_url or args.risk_stream_url:
                raise SetupError("--fake starts its own exchange: drop the --*-url options")
            exchange = await stack.enter_async_context(FakeExchange(seed=_FAKE_SEED))
            try:
                creds = exchange.add_account(margin_balances=margin_balances, isolated=isolated)
            except ValueError as exc:  # e.g. an --isolated symbol the fake does not list
                raise SetupError(f"fake exchange: {exc}") from None
            client = exchange.client(creds)
        else:
            client = client_from_env(env, args)
        await stack.enter_async_context(client)
        yield Venue(client, exchange)


async def run_until_stopped(duration: float | None, *activities: Coroutine[Any, Any, None]) -> None:
    """Return after ``duration`` seconds, or on Ctrl-C when ``duration`` is ``None``.

    ``activities`` (a polling loop, the fake market script...) run alongside and are cancelled on
    return; if one fails, its exception propagates (in an ``ExceptionGroup``). Ctrl-C ends the
    wait instead of cancelling everything, so the caller's shutdown code (cancel orders, repay)
    then runs as usual.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)

    def interrupted() -> None:
        _INTERRUPTED.set()
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError, ValueError):
        # Windows, or not the main thread: Ctrl-C then cancels the run (asyncio.run's default).
        installed = False
    else:
        installed = True
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(activity) for activity in activities]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
            for task in tasks:
                task.cancel()
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
            if previous is not None:
                # remove_signal_handler installs Python's default; restore asyncio.run's own.
                signal.signal(signal.SIGINT, previous)


def run_main(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], Awaitable[int]],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv``, run ``run(args)`` on a new event loop and return the exit status."""
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Every event line shows at once, also when the output goes to a pipe or a file.
        sys.stdout.reconfigure(line_buffering=True)

    async def guarded() -> int:
        try:
            status = await run(args)
        except SetupError as exc:
            print(f"{parser.prog}: {exc}", file=sys.stderr)
            return 2
        # Ctrl-C ended the wait and the example shut down cleanly: still "interrupted".
        return 130 if _INTERRUPTED.is_set() else status

    _INTERRUPTED.clear()
    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        return 130


# An amount without the wire's trailing zeros and never in exponent form: 0, 0.01, 60000.
fmt = format_amount
