"""Deterministic API credentials for the fake exchange, and the server-side signature check.

Pure: no sockets, no clock. Every key is derived from ``(seed, account number)``: API keys, HMAC
secrets and Ed25519 seeds with :class:`random.Random`, RSA keys picked by index from 16 keys shipped
in ``data/rsa_keys.pem``, so a test that seeds the exchange gets the same keys on every run.

The check is written independently of :mod:`binance_margin_async.signing` (stdlib ``hmac``, PyNaCl,
``cryptography``) so that a bug in the client's signer cannot be hidden by the fake making the same
mistake. All three schemes are deterministic: HMAC and Ed25519 are re-computed and compared, RSA
PKCS#1 v1.5 is verified with the public key (equivalent, and ~30x cheaper than re-signing).

Docs: https://developers.binance.com/docs/margin_trading/general-info (Signed endpoint security)
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import random
import string
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal

import nacl.signing

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Credentials", "KeyType", "Verifier", "make_credentials"]

KeyType = Literal["HMAC", "ED25519", "RSA"]
KEY_TYPES: Final[tuple[KeyType, ...]] = ("HMAC", "ED25519", "RSA")

_ALNUM: Final = string.ascii_letters + string.digits
# PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): SEQUENCE { INTEGER 0,
# AlgorithmIdentifier { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
_ED25519_PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")
# RSA keys cannot be derived from a seed by `cryptography`, so the fake ships 16 fixed 2048-bit
# PKCS#8 keys (generated once with `cryptography`) and picks one by index; loading one costs
# milliseconds where generating one cost ~1 s.
_RSA_FIXTURES: Final = "data/rsa_keys.pem"
_RSA_FIXTURE_COUNT: Final = 16
_PEM_END: Final = "-----END PRIVATE KEY-----\n"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What :meth:`FakeExchange.add_account` hands back: the keys a client needs.

    Exactly one of ``api_secret`` (HMAC) and ``private_key`` (PKCS#8 PEM, Ed25519 or RSA) is set.
    ``repr``/``str`` show the account id, the key type and a masked API key, never a secret.
    """

    account_id: str
    key_type: KeyType
    api_key: str
    api_secret: str | None = None
    private_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"Credentials(account_id={self.account_id!r}, key_type={self.key_type}, "
            f"api_key='{self.api_key[:4]}…{self.api_key[-3:]}')"
        )

    __str__ = __repr__


class Verifier:
    """Checks a request signature for one API key. ``check(payload, signature) -> bool``."""

    __slots__ = ("_check", "key_type")

    def __init__(self, key_type: KeyType, check: Callable[[bytes, str], bool]) -> None:
        self.key_type: Final = key_type
        self._check = check

    def check(self, payload: bytes, signature: str) -> bool:
        """True when ``signature`` (as decoded from the request) signs ``payload``."""
        return self._check(payload, signature)

    def __repr__(self) -> str:
        return f"Verifier({self.key_type})"


def _hmac_checker(secret: str) -> Callable[[bytes, str], bool]:
    key = secret.encode()

    def check(payload: bytes, signature: str) -> bool:
        expected = hmac.new(key, payload, hashlib.sha256).hexdigest()
        # Binance documents the hex signature as case-insensitive.
        return hmac.compare_digest(expected, signature.lower())

    return check


def _b64(signature: str) -> bytes | None:
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ed25519_checker(seed: bytes) -> Callable[[bytes, str], bool]:
    signing_key = nacl.signing.SigningKey(seed)

    def check(payload: bytes, signature: str) -> bool:
        raw = _b64(signature)
        if raw is None:
            return False
        return hmac.compare_digest(signing_key.sign(payload).signature, raw)

    return check


def _rsa_checker(public_key: Any) -> Callable[[bytes, str], bool]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def check(payload: bytes, signature: str) -> bool:
        raw = _b64(signature)
        if raw is None:
            return False
        try:
            public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    return check


def _ed25519_pem(seed: bytes) -> str:
    body = base64.b64encode(_ED25519_PKCS8_PREFIX + seed).decode()
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


@functools.cache
def _rsa_pems() -> tuple[str, ...]:
    """The shipped RSA keys, in file order."""
    text = resources.files(__package__).joinpath(_RSA_FIXTURES).read_text(encoding="ascii")
    pems = tuple(block + _PEM_END for block in text.split(_PEM_END) if block.strip())
    if len(pems) != _RSA_FIXTURE_COUNT:  # a broken install, not a caller error
        raise RuntimeError(f"{_RSA_FIXTURES}: expected {_RSA_FIXTURE_COUNT} keys, got {len(pems)}")
    return pems


@functools.lru_cache(maxsize=_RSA_FIXTURE_COUNT)
def _rsa_key(index: int) -> Any:
    """The shipped RSA private key number ``index`` (0 to 15), parsed once."""
    from cryptography.hazmat.primitives import serialization

    # The fixtures were generated by `cryptography` itself: skipping the (slow) consistency
    # check of an RSA key is safe here.
    return serialization.load_pem_private_key(
        _rsa_pems()[index].encode(), password=None, unsafe_skip_rsa_key_validation=True
    )


def make_credentials(
    seed: int, number: int, account_id: str, key_type: KeyType
) -> tuple[Credentials, Verifier]:
    """Credentials and their verifier for account ``number`` of an exchange seeded with ``seed``."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    label = f"binance-margin-async-fake:{seed}:{number}:{key_type}"
    rng = random.Random(label)
    api_key = "".join(rng.choices(_ALNUM, k=64))
    if key_type == "HMAC":
        secret = "".join(rng.choices(_ALNUM, k=64))
        creds = Credentials(account_id, key_type, api_key, api_secret=secret)
        return creds, Verifier(key_type, _hmac_checker(secret))
    if key_type == "ED25519":
        seed_bytes = rng.randbytes(32)
        creds = Credentials(account_id, key_type, api_key, private_key=_ed25519_pem(seed_bytes))
        return creds, Verifier(key_type, _ed25519_checker(seed_bytes))
    # Accounts 16 apart (or seeds chosen to collide) share a key pair; their API keys differ,
    # so each account still has its own credentials.
    index = (seed + number) % _RSA_FIXTURE_COUNT
    try:
        key = _rsa_key(index)
    except ImportError as exc:  # pragma: no cover - cryptography is in the dev extras
        raise ImportError(
            "RSA accounts need the 'cryptography' package: pip install 'binance-margin-async[rsa]'"
        ) from exc
    pem = _rsa_pems()[index]
    creds = Credentials(account_id, key_type, api_key, private_key=pem)
    return creds, Verifier(key_type, _rsa_checker(key.public_key()))
