"""The one redaction rule for every text the library produces.

API keys, secrets, private keys, listen tokens and listen keys appear in exception messages, log
records and reprs at most as a short masked prefix: :func:`mask` turns
``"vmPUZE6mv9SD5VNH…"`` into ``"vmPU…"`` (a secret of 8 characters or fewer shows nothing).
Enough to tell two keys apart in a log, never enough to use one.

:func:`redact` applies the rule to free text that may hold secrets the caller cannot name in
advance (an excerpt of a response body, a foreign library's error message, a formatted log line):

* every secret passed in ``secrets`` (the client's own API key and secret, a stream's tokens);
* the value after a secret-bearing name, in JSON or Python-repr form (``"listenKey": "…"``,
  ``'token': '…'``), as a query or form parameter (``listenKey=…``, ``signature=…``) or as a
  header (``X-MBX-APIKEY: …``), also when the text was cut in the middle of the value;
* the query string of every URL (``https://host/path?…``): signed queries carry the signature and
  sometimes a listen key; and the path after ``/ws/`` of a WebSocket URL, where the risk stream
  carries its listen key (``wss://margin-stream.binance.com/ws/<listenKey>``);
* PEM private-key blocks, whole.

Pure and dependency-free, so any shell (REST, streams, the trading session) can call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["MASK_PREFIX", "SECRET_NAMES", "mask", "redact"]

#: Characters of a secret that may be shown.
MASK_PREFIX: Final = 4

#: Names (JSON keys, query parameters, headers; compared case-insensitively) whose values are
#: credentials.
SECRET_NAMES: Final = frozenset(
    {
        "apikey",
        "apisecret",
        "secret",
        "secretkey",
        "privatekey",
        "listenkey",
        "listentoken",
        "token",
        "signature",
        "x-mbx-apikey",
    }
)

_NAMES: Final = "|".join(sorted((re.escape(name) for name in SECRET_NAMES), key=len, reverse=True))
# A quoted name (JSON or repr), then `:`, then the value, quoted or not, up to its end or the end
# of the text (an excerpt may cut a value in half).
_QUOTED: Final = re.compile(
    rf"""(?P<head>(?P<q>["'])(?:{_NAMES})(?P=q)\s*:\s*["']?)(?P<value>[^"'\s,&}}\]]+)""",
    re.IGNORECASE,
)
# name=value in a query or form body, and `Name: value` header lines. The lookbehind stops
# `token` from matching inside `listenTokenCount`.
_BARE: Final = re.compile(
    rf"""(?P<head>(?<![A-Za-z0-9_-])(?:{_NAMES})\s*(?:=|:\s*)["']?)(?P<value>[^"'\s,&}}\])]+)""",
    re.IGNORECASE,
)
_URL_QUERY: Final = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s'\"?#]*\?)[^\s'\"#]+", re.I)
_WS_PATH: Final = re.compile(r"(?P<head>\bwss?://[^\s'\"/?#]+/ws/)(?P<value>[^\s'\"?#]+)", re.I)
_PEM_PRIVATE: Final = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)


def mask(secret: str) -> str:
    """The shown form of a secret: its first :data:`MASK_PREFIX` characters and ``…``.

    Secrets of 8 characters or fewer are shown as ``…`` alone.
    """
    return f"{secret[:MASK_PREFIX]}…" if len(secret) > 2 * MASK_PREFIX else "…"


def _mask_match(match: re.Match[str]) -> str:
    value = match.group("value")
    # Already masked (the text went through redact before): keep it as it is.
    return match.group(0) if value.endswith("…") else match.group("head") + mask(value)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret masked by the rule of this module (see the module docstring).

    ``secrets`` are exact strings to mask wherever they occur; strings shorter than 8 characters
    are ignored (masking them would shred ordinary words).
    """
    for secret in sorted({s for s in secrets if len(s) >= 2 * MASK_PREFIX}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask(secret))
    if "PRIVATE KEY" in text:
        text = _PEM_PRIVATE.sub("<private key>", text)
    text = _URL_QUERY.sub(lambda m: m.group("head") + "…", text)
    text = _WS_PATH.sub(_mask_match, text)
    text = _QUOTED.sub(_mask_match, text)
    return _BARE.sub(_mask_match, text)
