"""Stream bookkeeping of the fake exchange: listen tokens, WebSocket API subscriptions, risk-stream
listen keys. Pure: connections are only stored (never used), times are arguments.

Rules (PROTOCOL.md §3-§4.6, and the fake's answers to the open questions of §9):

* a listen token belongs to one account scope (``"CROSS"`` or an isolated symbol) and stays valid
  until its ``expirationTime``; creating another token does not revoke it;
* one subscription per account scope per connection: the same token again is ``-2035``; a *new*
  token of that scope renews the existing subscription in place (same ``subscriptionId``, the new
  token's expiration); ids count up per connection, at most 65 535 over its lifetime (``-2042``);
* an expired subscription ends (the shell sends ``eventStreamTerminated``);
* one risk-stream listen key per account: creating one while it is active returns it and extends
  it; keepalive extends it; it expires ``validity`` seconds after the last extension.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .ledger import LedgerError

if TYPE_CHECKING:
    from ._conn import Connection

__all__ = ["ListenKey", "Session", "StreamBook", "Subscription"]

_TOKEN_ALPHABET: Final = string.ascii_letters + string.digits + "+/"  # Binance's are base64-like
_LISTEN_KEY_ALPHABET: Final = string.ascii_letters + string.digits
_MAX_SUBSCRIPTION_IDS: Final = 65_535
_NO_SUCH_LISTEN_KEY: Final = LedgerError(-1125, "This listenKey does not exist.")
_ACTIVE: Final = LedgerError(-2035, "User Data Stream subscription already active.")
_NEVER: Final = 2**62  # expiry of subscriptions without a token

Scope = tuple[str, str]  # (account id, "CROSS" or isolated symbol)


@dataclass(slots=True)
class _Token:
    scope: Scope
    expires_ms: int


@dataclass(slots=True, eq=False)
class Session:
    """The WebSocket API state of one connection."""

    conn: Connection
    connected_ms: int
    return_rate_limits: bool
    next_id: int = 0
    api_key: str | None = None  # the key of session.logon
    authorized_since: int | None = None
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    by_scope: dict[Scope, Subscription] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Subscription:
    """A listen-token subscription on one connection (``session``)."""

    session: Session
    sid: int
    scope: Scope
    token: str
    expires_ms: int
    # "token" (userDataStream.subscribe.listenToken), "logon" (userDataStream.subscribe on a
    # logged-on session) or "signature" (userDataStream.subscribe.signature).
    kind: str = "token"


@dataclass(slots=True, eq=False)
class ListenKey:
    """A risk-stream listen key and the connections streaming it (``True`` = combined format)."""

    key: str
    account_id: str
    expires_at: float  # epoch seconds
    streams: dict[Connection, bool] = field(default_factory=dict)


class StreamBook:
    """Tokens, subscriptions and listen keys of the whole exchange."""

    __slots__ = ("_by_scope", "_key_of_account", "_keys", "_rng", "_tokens")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._tokens: dict[str, _Token] = {}
        self._by_scope: dict[Scope, dict[Connection, Subscription]] = {}
        self._keys: dict[str, ListenKey] = {}
        self._key_of_account: dict[str, ListenKey] = {}

    # Listen tokens and subscriptions

    def issue_token(self, account_id: str, scope: str, expires_ms: int) -> str:
        """A new listen token for ``(account_id, scope)``."""
        token = "".join(self._rng.choices(_TOKEN_ALPHABET, k=70))
        self._tokens[token] = _Token((account_id, scope), expires_ms)
        return token

    def subscribe(self, session: Session, token: str, now_ms: int) -> Subscription:
        """``userDataStream.subscribe.listenToken``: a new or renewed subscription."""
        record = self._tokens.get(token)
        if record is None or record.expires_ms <= now_ms:
            raise LedgerError(-1209, "Invalid listen token.")
        existing = session.by_scope.get(record.scope)
        if existing is not None and existing.kind == "token":
            if existing.token == token:
                raise _ACTIVE
            existing.token = token
            existing.expires_ms = record.expires_ms
            return existing
        return self._add(session, record.scope, token, record.expires_ms, "token")

    def subscribe_account(self, session: Session, scope: Scope, kind: str) -> Subscription:
        """``userDataStream.subscribe`` (``kind`` ``"logon"``) or ``.signature``: a subscription
        to ``(account id, scope)`` that lasts until unsubscribed (no token, no expiry)."""
        return self._add(session, scope, "", _NEVER, kind)

    def _add(
        self, session: Session, scope: Scope, token: str, expires_ms: int, kind: str
    ) -> Subscription:
        if scope in session.by_scope:
            raise _ACTIVE  # one subscription per account (scope) per connection
        if session.next_id > _MAX_SUBSCRIPTION_IDS:
            raise LedgerError(-2042, "Maximum subscription ID reached for this connection.")
        sub = Subscription(session, session.next_id, scope, token, expires_ms, kind)
        session.next_id += 1
        session.subscriptions[sub.sid] = sub
        session.by_scope[scope] = sub
        self._by_scope.setdefault(scope, {})[session.conn] = sub
        return sub

    def unsubscribe(self, session: Session, sid: int | None) -> list[Subscription]:
        """End subscription ``sid`` of ``session`` (``-2036`` if unknown); all when ``None``."""
        if sid is None:
            subs = list(session.subscriptions.values())
        else:
            sub = session.subscriptions.get(sid)
            if sub is None:
                raise LedgerError(-2036, "User Data Stream subscription not active.")
            subs = [sub]
        for sub in subs:
            self._drop(sub)
        return subs

    def subscribers(self, account_id: str, scope: str) -> Mapping[Connection, Subscription]:
        """The live subscriptions of ``(account_id, scope)``, by connection."""
        return self._by_scope.get((account_id, scope), {})

    def expire_tokens(self, now_ms: int | None) -> list[Subscription]:
        """Forget tokens expired at ``now_ms`` (every token when ``None``) and end the
        subscriptions that expired with them; returns the ended subscriptions."""
        if now_ms is None:
            self._tokens.clear()
        else:
            for token in [t for t, rec in self._tokens.items() if rec.expires_ms <= now_ms]:
                del self._tokens[token]
        ended = [
            sub
            for subs in self._by_scope.values()
            for sub in subs.values()
            if sub.kind == "token" and (now_ms is None or sub.expires_ms <= now_ms)
        ]
        for sub in ended:
            self._drop(sub)
        return ended

    def close_session(self, session: Session) -> None:
        """The connection is gone: drop its subscriptions (silently)."""
        for sub in list(session.subscriptions.values()):
            self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        sub.session.subscriptions.pop(sub.sid, None)
        sub.session.by_scope.pop(sub.scope, None)
        subs = self._by_scope.get(sub.scope)
        if subs is not None:
            subs.pop(sub.session.conn, None)
            if not subs:
                del self._by_scope[sub.scope]

    # Risk-stream listen keys

    def listen_key(self, key: str) -> ListenKey | None:
        """The active listen key ``key``, if any."""
        return self._keys.get(key)

    def listen_key_of(self, account_id: str) -> ListenKey | None:
        """The account's active listen key, if any."""
        return self._key_of_account.get(account_id)

    def open_listen_key(self, account_id: str, expires_at: float) -> ListenKey:
        """``POST``: the account's active key (extended to ``expires_at``) or a new one."""
        listen_key = self._key_of_account.get(account_id)
        if listen_key is not None:
            listen_key.expires_at = expires_at
            return listen_key
        key = "".join(self._rng.choices(_LISTEN_KEY_ALPHABET, k=64))
        listen_key = ListenKey(key, account_id, expires_at)
        self._keys[key] = listen_key
        self._key_of_account[account_id] = listen_key
        return listen_key

    def owned_listen_key(self, account_id: str, key: str | None) -> ListenKey:
        """The account's active key ``key`` (default: its only one), else ``-1125``."""
        listen_key = self._key_of_account.get(account_id) if key is None else self._keys.get(key)
        if listen_key is None or listen_key.account_id != account_id:
            raise _NO_SUCH_LISTEN_KEY
        return listen_key

    def remove_listen_key(self, listen_key: ListenKey) -> None:
        """Forget a key (closed or expired); its streams are the caller's to close."""
        self._keys.pop(listen_key.key, None)
        if self._key_of_account.get(listen_key.account_id) is listen_key:
            del self._key_of_account[listen_key.account_id]

    def expired_listen_keys(self, now: float | None) -> list[ListenKey]:
        """Keys expired at ``now`` (every key when ``None``), removed from the book."""
        expired = [k for k in self._keys.values() if now is None or k.expires_at <= now]
        for listen_key in expired:
            self.remove_listen_key(listen_key)
        return expired
