"""Signing hot path: HMAC and Ed25519 signatures and query encoding, each against its raw floor.

Budget (DESIGN.md §9): HMAC signing within 1.2x raw ``hmac``.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import nacl.signing

from benchmarks._util import compare_ns, ratio_line
from binance_margin_async.signing import Ed25519Signer, HmacSigner, encode_params

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u\n"
    "-----END PRIVATE KEY-----\n"
)
ED25519_SEED = bytes.fromhex("8244616b4606b8400a66fd0efcbea9af1611fd2540e975b3808b20007d9bcf6e")
# A typical margin order as the client sends it.
ORDER = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "0.01000000"),
    ("price", "52000.00"),
    ("sideEffectType", "MARGIN_BUY"),
    ("newClientOrderId", "bma-5f1c2e9a7d3b4c60"),
    ("recvWindow", "5000"),
    ("timestamp", "1767225600000"),
]
PAYLOAD = urlencode(ORDER).encode()


def run() -> list[str]:
    """Median cost per call, as ratios to the raw library call doing the same work."""
    hmac_signer = HmacSigner(SECRET)
    key = SECRET.encode()
    ours, floor = compare_ns(
        lambda: hmac_signer.sign(PAYLOAD),
        lambda: hmac.new(key, PAYLOAD, hashlib.sha256).hexdigest(),
    )
    lines = [ratio_line("HmacSigner.sign vs hmac.new().hexdigest()", ours, floor)]

    ed_signer = Ed25519Signer(ED25519_PEM)
    signing_key = nacl.signing.SigningKey(ED25519_SEED)
    ours, floor = compare_ns(lambda: ed_signer.sign(PAYLOAD), lambda: signing_key.sign(PAYLOAD))
    lines.append(ratio_line("Ed25519Signer.sign vs nacl SigningKey.sign", ours, floor))

    ours, floor = compare_ns(lambda: encode_params(ORDER), lambda: urlencode(ORDER))
    lines.append(ratio_line("encode_params(order) vs urllib.parse.urlencode", ours, floor))
    return lines
