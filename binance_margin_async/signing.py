"""Request signing for Binance: percent-encoding, HMAC-SHA256, Ed25519 and RSA signers. Pure.

REST (https://developers.binance.com/docs/margin_trading/general-info): since 2026-01-15 the
payload is percent-encoded *before* signing, and the exact signed string goes on the wire. So the
client builds the query once with :func:`encode_params` (RFC 3986: UTF-8, unreserved
``A-Za-z0-9-_.~`` kept, everything else ``%XX`` in uppercase hex, space → ``%20``), signs it, and
appends the signature last with :func:`signed_query`.

WebSocket API requests are signed differently: parameters sorted by name, joined raw, not encoded
(:func:`ws_api_payload`).

All three schemes are deterministic (HMAC, Ed25519, RSA PKCS#1 v1.5), so a verifier (the fake
exchange) checks a request by building the same signer from the same key and re-signing.
Signers never show their key in ``repr``/``str``, and key errors never echo the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal, Protocol

import nacl.bindings

from .errors import InvalidKeyError, ParameterError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "Ed25519Signer",
    "HmacSigner",
    "RsaSigner",
    "Signer",
    "encode_params",
    "load_signer",
    "signed_query",
    "ws_api_payload",
]

KeyType = Literal["HMAC", "ED25519", "RSA"]

_UNRESERVED: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
# byte value → its encoding: the byte itself when unreserved, else "%XX" (uppercase hex).
_BYTE_TO_TEXT: Final = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))
# A joined "k=v&k=v" made only of unreserved characters and the separators needs no encoding,
# provided the separator counts prove no key or value contained "=" or "&" itself.
_PLAIN_QUERY: Final = re.compile(r"[A-Za-z0-9\-_.~=&]*")
_PLAIN_PART: Final = re.compile(r"[A-Za-z0-9\-_.~]*")

_RSA_EXTRA: Final = (
    "RSA keys, encrypted keys and PKCS#8 v2 Ed25519 keys need the optional 'cryptography' "
    "package: pip install 'binance-margin-async[rsa]'"
)
_PEM_PRIVATE: Final = ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----")
_PEM_ENCRYPTED: Final = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
_PEM_RSA: Final = "-----BEGIN RSA PRIVATE KEY-----"  # PKCS#1, as written by older openssl
# PKCS#8 v1 of an Ed25519 key is always these 16 bytes + the 32-byte seed (RFC 8410 §7):
# SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }.
_ED25519_PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")
_ED25519_OID: Final = bytes.fromhex("06032b6570")
_RSA_OID: Final = bytes.fromhex("06092a864886f70d010101")  # rsaEncryption 1.2.840.113549.1.1.1


def _quote(text: str) -> str:
    """Percent-encode one key or value (RFC 3986 unreserved kept, UTF-8, uppercase hex)."""
    if _PLAIN_PART.fullmatch(text) is not None:
        return text
    return "".join([_BYTE_TO_TEXT[b] for b in text.encode("utf-8")])


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode ``params`` into ``"k=v&k=v"`` in the given order.

    RFC 3986: text is UTF-8 encoded, ``A-Za-z0-9-_.~`` are kept, every other byte becomes ``%XX``
    with uppercase hex (space → ``%20``, ``+`` → ``%2B``). This is the string that is signed and
    sent unchanged; never re-encode it. https://developers.binance.com/docs/margin_trading/general-info
    """
    # The slow path reads the pairs a second time, so a one-shot iterator must be kept.
    pairs = params if isinstance(params, list | tuple) else list(params)
    query = "&".join([f"{key}={value}" for key, value in pairs])
    count = len(pairs)
    # Fast path: typical orders (symbols, enums, decimals, digits) need no encoding at all.
    if (
        query.count("=") == count
        and query.count("&") == max(count - 1, 0)
        and _PLAIN_QUERY.fullmatch(query) is not None
    ):
        return query
    return "&".join([f"{_quote(key)}={_quote(value)}" for key, value in pairs])


def _quote_base64(signature: str) -> str:
    # The base64 alphabet's only reserved characters; three C-level replaces beat a general pass.
    return signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


class Signer(Protocol):
    """Signs payload bytes. HMAC returns lowercase hex; Ed25519 and RSA return base64."""

    @property
    def key_type(self) -> KeyType:
        """``"HMAC"``, ``"ED25519"`` or ``"RSA"``."""
        ...

    def sign(self, payload: bytes) -> str:
        """Return the signature of ``payload``."""
        ...


class HmacSigner:
    """HMAC-SHA256 with the API secret, hex output.

    https://developers.binance.com/docs/margin_trading/general-info (SIGNED endpoint security)
    """

    __slots__ = ("_mac",)
    key_type: Final = "HMAC"

    def __init__(self, secret: str) -> None:
        if not isinstance(secret, str) or not secret:
            raise InvalidKeyError("api_secret", "must be a non-empty string")
        # Keying HMAC costs two hash blocks; copying an already keyed object skips that on
        # every signature (measured ~1.5x faster than hmac.new per call, see benchmarks).
        self._mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)

    def sign(self, payload: bytes) -> str:
        """Return the lowercase hex HMAC-SHA256 of ``payload``."""
        mac = self._mac.copy()
        mac.update(payload)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(<secret hidden>)"


class Ed25519Signer:
    """Ed25519 signatures (base64) from a PKCS#8 PEM private key; Binance's recommended key type.

    Unencrypted keys are parsed here (RFC 8410 layout) with no optional dependency; encrypted
    keys (``-----BEGIN ENCRYPTED PRIVATE KEY-----`` + ``password``) need ``cryptography``.
    https://developers.binance.com/docs/margin_trading/general-info
    """

    __slots__ = ("_secret_key",)
    key_type: Final = "ED25519"

    def __init__(self, pem: str | bytes, password: str | bytes | None = None) -> None:
        text = _pem_text(pem)
        if _PEM_ENCRYPTED in text or password is not None:
            key = _load_with_cryptography(text, password)
            seed = _ed25519_seed_of(key)
        else:
            der = _pem_der(text)
            if der.startswith(_ED25519_PKCS8_PREFIX) and len(der) == 48:
                seed = der[16:]
            elif _ED25519_OID in der[:32]:
                # Another valid Ed25519 encoding (e.g. PKCS#8 v2 with the public key attached).
                seed = _ed25519_seed_of(_load_with_cryptography(text, None))
            else:
                raise InvalidKeyError("private_key", "is not an Ed25519 PKCS#8 private key")
        self._secret_key = _ed25519_secret_key(seed)

    @classmethod
    def _from_seed(cls, seed: bytes) -> Ed25519Signer:
        signer = cls.__new__(cls)
        signer._secret_key = _ed25519_secret_key(seed)
        return signer

    def sign(self, payload: bytes) -> str:
        """Return the base64 Ed25519 signature (64 bytes → 88 characters) of ``payload``."""
        # crypto_sign returns signature + message; the raw binding skips SigningKey's wrappers.
        signed = nacl.bindings.crypto_sign(payload, self._secret_key)
        return base64.b64encode(signed[:64]).decode("ascii")

    def __repr__(self) -> str:
        return "Ed25519Signer(<private key hidden>)"


class RsaSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256 (base64) from a PEM private key; needs ``cryptography``.

    Install with ``pip install 'binance-margin-async[rsa]'``.
    https://developers.binance.com/docs/margin_trading/general-info
    """

    __slots__ = ("_hash", "_key", "_padding")
    key_type: Final = "RSA"

    def __init__(self, pem: str | bytes, password: str | bytes | None = None) -> None:
        self._init_key(_load_with_cryptography(_pem_text(pem), password))

    @classmethod
    def _from_key(cls, key: object) -> RsaSigner:
        signer = cls.__new__(cls)
        signer._init_key(key)
        return signer

    def _init_key(self, key: object) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidKeyError("private_key", "is not an RSA private key")
        self._key: RSAPrivateKey = key
        # Built once: both are immutable parameter objects.
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    def sign(self, payload: bytes) -> str:
        """Return the base64 PKCS#1 v1.5 SHA-256 signature of ``payload``."""
        return base64.b64encode(self._key.sign(payload, self._padding, self._hash)).decode("ascii")

    def __repr__(self) -> str:
        return "RsaSigner(<private key hidden>)"


def _pem_text(pem: object) -> str:
    if isinstance(pem, bytes):
        try:
            return pem.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidKeyError("private_key", "PEM must be ASCII text") from None
    if not isinstance(pem, str):
        raise InvalidKeyError("private_key", "must be PEM text (str or bytes)")
    return pem


def _pem_der(text: str) -> bytes:
    """The DER bytes of a ``-----BEGIN PRIVATE KEY-----`` block."""
    begin, end = _PEM_PRIVATE
    start = text.find(begin)
    stop = text.find(end, start + len(begin))
    if start < 0 or stop < 0:
        raise InvalidKeyError("private_key", "expected a PEM '-----BEGIN PRIVATE KEY-----' block")
    body = "".join(text[start + len(begin) : stop].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError("private_key", "PEM body is not valid base64") from None


def _ed25519_secret_key(seed: bytes) -> bytes:
    _public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    return bytes(secret)


def _ed25519_seed_of(key: object) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidKeyError("private_key", "is not an Ed25519 private key")
    return key.private_bytes_raw()


def _load_with_cryptography(text: str, password: str | bytes | None) -> object:
    """Parse any PEM private key with ``cryptography``; errors never include key material."""
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as exc:
        raise ImportError(_RSA_EXTRA) from exc
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        return load_pem_private_key(text.encode("ascii"), password=secret)
    except TypeError:
        # cryptography raises TypeError exactly for a password/encryption mismatch.
        if secret is None:
            raise InvalidKeyError(
                "private_key_password", "the private key is encrypted: a password is required"
            ) from None
        raise InvalidKeyError(
            "private_key_password", "given, but the private key is not encrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # Its messages are safe, but "from None" keeps any parser context out of tracebacks.
        raise InvalidKeyError(
            "private_key", "cannot be parsed as a PEM private key (or the password is wrong)"
        ) from None


def load_signer(
    *,
    api_secret: str | None = None,
    private_key: str | bytes | None = None,
    private_key_password: str | bytes | None = None,
) -> Signer:
    """Build the signer for the given credentials: exactly one of ``api_secret``/``private_key``.

    ``private_key`` is PEM text or bytes; Ed25519 vs RSA is read from the key's algorithm OID
    (unencrypted) or from the decrypted key (encrypted, needs ``cryptography``).
    """
    if api_secret is not None and private_key is not None:
        raise ParameterError("private_key", "give either api_secret or private_key, not both")
    if api_secret is not None:
        if private_key_password is not None:
            raise ParameterError("private_key_password", "only applies to private_key")
        return HmacSigner(api_secret)
    if private_key is None:
        raise ParameterError("api_secret", "either api_secret or private_key is required")
    text = _pem_text(private_key)
    if _PEM_RSA in text:
        return RsaSigner(text, private_key_password)
    if _PEM_ENCRYPTED in text or private_key_password is not None:
        return _signer_for_key(_load_with_cryptography(text, private_key_password))
    der = _pem_der(text)
    # The algorithm OID sits in the AlgorithmIdentifier near the start of the PKCS#8 structure.
    head = der[:32]
    if _ED25519_OID in head:
        return Ed25519Signer(text)
    if _RSA_OID in head:
        return RsaSigner(text)
    raise InvalidKeyError("private_key", "unsupported key type: use Ed25519 or RSA (PKCS#8 PEM)")


def _signer_for_key(key: object) -> Signer:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer._from_seed(key.private_bytes_raw())
    return RsaSigner._from_key(key)


def signed_query(signer: Signer, query: str) -> str:
    """Sign the encoded ``query`` and return it with ``&signature=<percent-encoded signature>``.

    ``query`` must be the output of :func:`encode_params` (the bytes that go on the wire); the
    signature is appended last, as Binance's docs do.
    """
    try:
        payload = query.encode("ascii")
    except UnicodeEncodeError:
        # Signing raw text would produce a signature over bytes that differ from the wire.
        raise ParameterError("query", "must be percent-encoded ASCII (use encode_params)") from None
    signature = signer.sign(payload)
    if signer.key_type != "HMAC":  # hex needs no encoding; base64 has + / =
        signature = _quote_base64(signature)
    return f"{query}&signature={signature}" if query else f"signature={signature}"


def _ws_value(value: object) -> str:
    if isinstance(value, bool):  # JSON spelling; str(True) would be "True"
        return "true" if value else "false"
    return str(value)


def ws_api_payload(params: Mapping[str, object]) -> bytes:
    """The bytes a WebSocket API request signs: params sorted by name, ``k=v&…``, raw UTF-8.

    ``signature`` is excluded and nothing is percent-encoded (unlike REST). Pass decimals as
    strings so the signed text equals the JSON text sent.
    https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/request-security
    """
    return "&".join(
        [f"{key}={_ws_value(params[key])}" for key in sorted(params) if key != "signature"]
    ).encode("utf-8")
