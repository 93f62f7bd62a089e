"""Plumbing shared by the examples: command line, fake-or-real client, running until stopped.

Not part of the library; copy what you need. Every example accepts:

* ``--fake``: start a :class:`~binance_margin_async.testing.FakeExchange` in this process (REST,
  WebSocket API and risk stream on 127.0.0.1), fund an account on it and point the client there.
  No keys, no network.
* ``--duration SECONDS``: stop after that long; without it, run until Ctrl-C.

Without ``--fake`` the client talks to production Binance with the keys in the environment:
``BINANCE_API_KEY`` plus either ``BINANCE_API_SECRET`` (HMAC) or ``BINANCE_PRIVATE_KEY_FILE``
(path to an Ed25519 or RSA PEM key). The library itself never reads the environment or files;
that is the application's job, done here once at start-up. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from binance_margin_async import MarginClient
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


class SetupError(Exception):
    """The command line or the environment does not say how to run (e.g. no API key)."""


@dataclass(frozen=True, slots=True)
class Venue:
    """Where an example runs: the client, and the fake exchange behind it (``None`` on Binance)."""

    client: MarginClient
    exchange: FakeExchange | None


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every example shares (``--fake``, ``--duration``).

    ``doc`` is the example's module docstring; its first line describes the command.
    """
    parser = argparse.ArgumentParser(description=(doc or "").partition("\n")[0])
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
    return parser


def _credentials(env: Mapping[str, str]) -> tuple[str, str | None, bytes | None]:
    """API key, HMAC secret and PEM private key from the environment (see the module doc)."""
    api_key = env.get("BINANCE_API_KEY")
    secret = env.get("BINANCE_API_SECRET")
    key_file = env.get("BINANCE_PRIVATE_KEY_FILE")
    if not api_key or not (secret or key_file):
        raise SetupError(
            "set BINANCE_API_KEY and BINANCE_API_SECRET (or BINANCE_PRIVATE_KEY_FILE), "
            "or pass --fake"
        )
    private_key = None
    if key_file:
        try:
            private_key = Path(key_file).read_bytes()
        except OSError as exc:
            # The path is not a secret; the exception text names only the path and the reason.
            raise SetupError(f"cannot read BINANCE_PRIVATE_KEY_FILE: {exc}") from None
    return api_key, secret, private_key


@contextlib.asynccontextmanager
async def open_venue(
    fake: bool,
    *,
    margin_balances: Mapping[str, str] | None = None,
    isolated: Mapping[str, Mapping[str, str]] | None = None,
    env: Mapping[str, str] = os.environ,
) -> AsyncIterator[Venue]:
    """Yield a connected :class:`Venue`: the fake exchange with a funded account, or Binance.

    ``margin_balances`` (cross margin wallet) and ``isolated`` (symbol → balances of that isolated
    account) fund the fake account; they are ignored on Binance, where the account is what it is.
    """
    async with contextlib.AsyncExitStack() as stack:
        exchange = None
        if fake:
            exchange = await stack.enter_async_context(FakeExchange(seed=_FAKE_SEED))
            try:
                creds = exchange.add_account(margin_balances=margin_balances, isolated=isolated)
            except ValueError as exc:  # e.g. an --isolated symbol the fake does not list
                raise SetupError(f"fake exchange: {exc}") from None
            client = exchange.client(creds)
        else:
            api_key, secret, private_key = _credentials(env)
            # Production URLs are the client's defaults.
            client = MarginClient(api_key, secret, private_key=private_key)
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
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
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
            return await run(args)
        except SetupError as exc:
            print(f"{parser.prog}: {exc}", file=sys.stderr)
            return 2

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        return 130


def fmt(amount: Decimal) -> str:
    """An amount without the wire's trailing zeros and never in exponent form: 0.01, 60000."""
    return f"{amount.normalize():f}" if amount else "0"
