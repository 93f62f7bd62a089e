"""Deterministic API credentials for the fake exchange, and the server-side signature check.

Pure: no sockets, no clock. Every key is derived from ``(seed, account number)`` with
:class:`random.Random`, so a test that seeds the exchange gets the same keys on every run.

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
from typing import TYPE_CHECKING, Any, Final, Literal

import nacl.signing

from ..redaction import mask

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Credentials", "KeyType", "Verifier", "make_credentials"]

KeyType = Literal["HMAC", "ED25519", "RSA"]
KEY_TYPES: Final[tuple[KeyType, ...]] = ("HMAC", "ED25519", "RSA")

_ALNUM: Final = string.ascii_letters + string.digits
# PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): SEQUENCE { INTEGER 0,
# AlgorithmIdentifier { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
_ED25519_PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")
_RSA_BITS: Final = 2048
_RSA_EXPONENT: Final = 65537
_SIEVE_LIMIT: Final = 8192
_SIEVE_SPAN: Final = 4096  # odd numbers examined per random starting point


def _small_primes(limit: int) -> tuple[int, ...]:
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if flags[n]:
            flags[n * n :: n] = bytes(len(range(n * n, limit, n)))
    return tuple(n for n in range(3, limit) if flags[n])


_SMALL_PRIMES: Final = _small_primes(_SIEVE_LIMIT)


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
            f"api_key={mask(self.api_key)!r})"
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


def _miller_rabin(n: int, rng: random.Random) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(8):  # 8 rounds: error far below 2**-100 for random 1024-bit candidates
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    """A random ``bits``-bit prime: sieve a run of odd numbers from a random start, then test."""
    while True:
        # Top two bits set so that p*q has exactly 2*bits bits; odd.
        base = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        alive = bytearray([1]) * _SIEVE_SPAN  # alive[i] stands for base + 2*i
        for p in _SMALL_PRIMES:
            first = (-(base % p) * ((p + 1) // 2)) % p  # base + 2*i ≡ 0 (mod p)
            alive[first::p] = bytes(len(range(first, _SIEVE_SPAN, p)))
        for i in range(_SIEVE_SPAN):
            candidate = base + 2 * i
            if (
                alive[i]
                and candidate.bit_length() == bits
                and (candidate - 1) % _RSA_EXPONENT
                and _miller_rabin(candidate, rng)
            ):
                return candidate


@functools.lru_cache(maxsize=32)
def _rsa_key(label: str) -> Any:
    """The 2048-bit RSA key for ``label``: `cryptography` cannot generate keys from a seed, so the
    primes come from a seeded PRNG. Cached: the generation is pure and costs ~0.2 s."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    rng = random.Random(label)
    half = _RSA_BITS // 2
    p = _prime(half, rng)
    q = _prime(half, rng)
    while q == p:
        q = _prime(half, rng)
    d = pow(_RSA_EXPONENT, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(_RSA_EXPONENT, p * q),
    )
    return numbers.private_key()


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
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:  # pragma: no cover - cryptography is in the dev extras
        raise ImportError(
            "RSA accounts need the 'cryptography' package: pip install 'binance-margin-async[rsa]'"
        ) from exc
    key = _rsa_key(f"{label}:rsa")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    creds = Credentials(account_id, key_type, api_key, private_key=pem)
    return creds, Verifier(key_type, _rsa_checker(key.public_key()))
