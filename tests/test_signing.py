"""Signing: Binance's published vectors (PROTOCOL.md §1.3, §1.4), encoding rules, key handling."""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from binance_margin_async.errors import InvalidKeyError, ParameterError
from binance_margin_async.signing import (
    Ed25519Signer,
    HmacSigner,
    RsaSigner,
    Signer,
    encode_params,
    load_signer,
    signed_query,
    ws_api_payload,
)

# --- PROTOCOL.md §1.3 / §1.4 material, copied exactly ---

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
HMAC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
HMAC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
FULLWIDTH = "１２３４５６"
FULLWIDTH_ENCODED = "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
HMAC_PAYLOAD_NON_ASCII = HMAC_PAYLOAD.replace("symbol=LTCBTC", "symbol=" + FULLWIDTH_ENCODED)
HMAC_SIGNATURE_NON_ASCII = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
HMAC_MIXED_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
HMAC_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"

ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u\n"
    "-----END PRIVATE KEY-----\n"
)
ED25519_PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u"
FIX_PAYLOAD = b"A\x01EXAMPLE\x01SPOT\x011\x0120240627-11:17:25.223"
FIX_SIGNATURE = (
    "4MHXelVVcpkdwuLbl6n73HQUXUf1dse2PCgT1DYqW9w8AVZ1RACFGM+5UdlGPrQHrgtS3CvsRURC1oj73j8gCA=="
)
REST_PAYLOAD = (
    "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
    "&timestamp=1668481559918&recvWindow=5000"
)
REST_ED25519 = (
    "inDT086KVIP8vgUfw5sV3VTkescWztiAGlf4x8FLKHM4NInsn0c1kYVLoGMO8cyjfR6vmTku2YQE0gtfVVlfCw=="
)
REST_PAYLOAD_NON_ASCII = REST_PAYLOAD.replace("symbol=BTCUSDT", "symbol=" + FULLWIDTH_ENCODED)
REST_ED25519_NON_ASCII = (
    "vECjNXSlVOz1DskXXQ866KhikKY8cxajBXKAU0COlYYemqEr45TXiRS/jNB3LyHHh48pu7z2S6pTFhmhWNRBBw=="
)
RSA_DOC_SIGNATURE = (
    "HZ8HOjiJ1s/igS9JA+n7+7Ti/ihtkRF5BIWcPIEluJP6tlbFM/Bf44LfZka/iemtahZAZzcO9TnI5uaXh3++lrqtNonCw"
    "p6/245UFWkiW1elpgtVAmJPbogcAv6rSlokztAfWk296ZJXzRDYAtzGH0gq7CgSJKfH+XxaCmR0WcvlKjNQnp12/eKXJ"
    "YO4tDap8UCBLuyxDnR7oJKLHQHJLP0r0EAVOOSIbrFang/1WOq+Jaq4Efc4XpnTgnwlBbWTmhWDR1pvS9iVEzcSYLHT/"
    "fNnMRxFc7u+j3qI//5yuGuu14KR0MuQKKCSpViieD+fIti46sxPTsjSemoUKp0oXA=="
)
WS_PARAMS: dict[str, object] = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
    "recvWindow": 100,
    "timestamp": 1645423376532,
    "apiKey": API_KEY,
    "signature": "ignored",
}
WS_PAYLOAD = (
    f"apiKey={API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
    "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
WS_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
WS_SIGNATURE_NON_ASCII = "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"

ORDER = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
    ("recvWindow", "5000"),
    ("timestamp", "1499827319559"),
]


# Module scope: built before the function-scoped no_cryptography fixture blocks the import.
@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return _pkcs8(rsa_key)


@pytest.fixture(scope="module")
def encrypted_ed25519_pem() -> bytes:
    return _pkcs8(_seed_key(), b"s3cret")


def _pkcs8(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return pem


def _seed_key() -> ed25519.Ed25519PrivateKey:
    der = base64.b64decode(ED25519_PEM_BODY)
    return ed25519.Ed25519PrivateKey.from_private_bytes(der[16:])


class _FixedSigner:
    """A stand-in Signer returning a known signature, to test the URL step on its own."""

    def __init__(self, key_type: Literal["HMAC", "ED25519", "RSA"], signature: str) -> None:
        self.key_type: Literal["HMAC", "ED25519", "RSA"] = key_type
        self.signature = signature
        self.signed: list[bytes] = []

    def sign(self, payload: bytes) -> str:
        self.signed.append(payload)
        return self.signature


@pytest.fixture
def no_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import cryptography…`` fail, as when the [rsa] extra is not installed."""
    real_import = builtins.__import__

    def fake_import(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> Any:
        if name == "cryptography" or name.startswith("cryptography."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)


# --- HMAC (§1.3) ---


def test_hmac_vector() -> None:
    assert HmacSigner(SECRET).sign(HMAC_PAYLOAD.encode()) == HMAC_SIGNATURE


def test_hmac_non_ascii_vector_from_encoded_params() -> None:
    params = [("symbol", FULLWIDTH), *ORDER[1:]]
    query = encode_params(params)
    assert query == HMAC_PAYLOAD_NON_ASCII
    assert HmacSigner(SECRET).sign(query.encode()) == HMAC_SIGNATURE_NON_ASCII


def test_hmac_query_plus_body_vector() -> None:
    assert HmacSigner(SECRET).sign(HMAC_MIXED_PAYLOAD.encode()) == HMAC_MIXED_SIGNATURE


def test_hmac_signer_is_reusable() -> None:
    signer = HmacSigner(SECRET)
    first = signer.sign(b"a=1")
    assert signer.sign(HMAC_PAYLOAD.encode()) == HMAC_SIGNATURE
    assert signer.sign(b"a=1") == first
    assert first == hmac.new(SECRET.encode(), b"a=1", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("secret", ["", None, b"bytes-secret"])
def test_hmac_rejects_bad_secret(secret: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        HmacSigner(secret)
    assert info.value.param == "api_secret"


# --- Ed25519 (§1.3) ---


@pytest.mark.parametrize("pem", [ED25519_PEM, ED25519_PEM.encode(), ED25519_PEM.strip()])
def test_ed25519_fix_vector(pem: str | bytes) -> None:
    assert Ed25519Signer(pem).sign(FIX_PAYLOAD) == FIX_SIGNATURE


@pytest.mark.parametrize(
    ("payload", "signature"),
    [(REST_PAYLOAD, REST_ED25519), (REST_PAYLOAD_NON_ASCII, REST_ED25519_NON_ASCII)],
)
def test_ed25519_rest_vectors(payload: str, signature: str) -> None:
    signer = load_signer(private_key=ED25519_PEM)
    assert signer.key_type == "ED25519"
    assert signer.sign(payload.encode()) == signature


def test_ed25519_works_without_cryptography(no_cryptography: None) -> None:
    assert Ed25519Signer(ED25519_PEM).sign(FIX_PAYLOAD) == FIX_SIGNATURE
    assert load_signer(private_key=ED25519_PEM).sign(FIX_PAYLOAD) == FIX_SIGNATURE


def test_ed25519_encrypted_pem(encrypted_ed25519_pem: bytes) -> None:
    pem = encrypted_ed25519_pem
    assert b"ENCRYPTED" in pem
    assert Ed25519Signer(pem, "s3cret").sign(FIX_PAYLOAD) == FIX_SIGNATURE
    signer = load_signer(private_key=pem, private_key_password=b"s3cret")
    assert signer.key_type == "ED25519"
    assert signer.sign(FIX_PAYLOAD) == FIX_SIGNATURE


def test_encrypted_pem_without_cryptography(
    encrypted_ed25519_pem: bytes, no_cryptography: None
) -> None:
    with pytest.raises(ImportError, match=r"binance-margin-async\[rsa\]"):
        Ed25519Signer(encrypted_ed25519_pem, "s3cret")
    with pytest.raises(ImportError, match=r"binance-margin-async\[rsa\]"):
        load_signer(private_key=encrypted_ed25519_pem, private_key_password="s3cret")


def test_encrypted_pem_password_errors(encrypted_ed25519_pem: bytes) -> None:
    pem = encrypted_ed25519_pem
    with pytest.raises(InvalidKeyError) as missing:
        load_signer(private_key=pem)
    assert missing.value.param == "private_key_password"
    with pytest.raises(InvalidKeyError) as wrong:
        load_signer(private_key=pem, private_key_password="nope")
    assert wrong.value.param == "private_key"


def test_password_for_unencrypted_key_is_rejected() -> None:
    with pytest.raises(InvalidKeyError) as info:
        Ed25519Signer(ED25519_PEM, "unneeded")
    assert info.value.param == "private_key_password"


def test_ed25519_signer_rejects_rsa_key(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidKeyError, match="Ed25519"):
        Ed25519Signer(_pkcs8(rsa_key))


# --- RSA ---


def test_rsa_sign_verifies_with_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pkcs8(rsa_key)
    signer = load_signer(private_key=pem)
    assert isinstance(signer, RsaSigner)
    assert signer.key_type == "RSA"
    signature = signer.sign(REST_PAYLOAD.encode())
    raw = base64.b64decode(signature, validate=True)
    assert len(raw) == 256
    rsa_key.public_key().verify(raw, REST_PAYLOAD.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(raw, b"tampered", padding.PKCS1v15(), hashes.SHA256())
    # PKCS#1 v1.5 is deterministic: a verifier re-signing with the same key gets the same text.
    assert RsaSigner(pem.decode()).sign(REST_PAYLOAD.encode()) == signature


def test_rsa_pkcs1_and_encrypted_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    expected = RsaSigner(_pkcs8(rsa_key)).sign(b"x=1")
    pkcs1 = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert load_signer(private_key=pkcs1).sign(b"x=1") == expected
    encrypted = _pkcs8(rsa_key, b"pw")
    assert load_signer(private_key=encrypted, private_key_password="pw").sign(b"x=1") == expected
    assert RsaSigner(encrypted, b"pw").sign(b"x=1") == expected


def test_rsa_signer_rejects_ed25519_key() -> None:
    with pytest.raises(InvalidKeyError, match="RSA"):
        RsaSigner(ED25519_PEM)


def test_rsa_without_cryptography_names_the_extra(rsa_pem: bytes, no_cryptography: None) -> None:
    pem = rsa_pem
    with pytest.raises(ImportError, match=r"pip install 'binance-margin-async\[rsa\]'"):
        RsaSigner(pem)
    with pytest.raises(ImportError, match=r"binance-margin-async\[rsa\]"):
        load_signer(private_key=pem)


# --- malformed keys and credentials ---


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a pem at all",
        "-----BEGIN PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIE\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n",
        b"\xff\xfe binary",
    ],
)
def test_malformed_pem_is_invalid_key(pem: str | bytes) -> None:
    with pytest.raises(InvalidKeyError) as info:
        load_signer(private_key=pem)
    assert info.value.param == "private_key"
    with pytest.raises(InvalidKeyError):
        Ed25519Signer(pem)


def test_truncated_ed25519_key_never_echoes_the_key() -> None:
    body = ED25519_PEM_BODY[:-8]
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidKeyError) as info:
        Ed25519Signer(pem)
    assert body not in str(info.value)
    assert body[:16] not in repr(info.value)


def test_unsupported_key_type() -> None:
    pem = _pkcs8(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidKeyError, match="unsupported"):
        load_signer(private_key=pem)


def test_not_a_key_object() -> None:
    with pytest.raises(InvalidKeyError):
        Ed25519Signer(12345)  # type: ignore[arg-type]


def test_load_signer_credential_rules() -> None:
    assert isinstance(load_signer(api_secret=SECRET), HmacSigner)
    with pytest.raises(ParameterError) as neither:
        load_signer()
    assert neither.value.param == "api_secret"
    with pytest.raises(ParameterError) as both:
        load_signer(api_secret=SECRET, private_key=ED25519_PEM)
    assert both.value.param == "private_key"
    with pytest.raises(ParameterError) as stray:
        load_signer(api_secret=SECRET, private_key_password="pw")
    assert stray.value.param == "private_key_password"


def test_reprs_hide_secrets(rsa_key: rsa.RSAPrivateKey) -> None:
    signers: list[Signer] = [
        HmacSigner(SECRET),
        Ed25519Signer(ED25519_PEM),
        RsaSigner(_pkcs8(rsa_key)),
    ]
    seed_hex = base64.b64decode(ED25519_PEM_BODY)[16:].hex()
    for signer in signers:
        text = repr(signer) + str(signer)
        assert "hidden" in text
        for secret in (SECRET, ED25519_PEM_BODY, seed_hex, "PRIVATE KEY"):
            assert secret not in text


# --- percent-encoding (§1.2) ---


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("0.01000000", "0.01000000"),
        ("a-b_c.d~e", "a-b_c.d~e"),
        ("a b", "a%20b"),
        ("+", "%2B"),
        ("/", "%2F"),
        ("=", "%3D"),
        ("&", "%26"),
        ("%", "%25"),
        ("~", "~"),
        ("é", "%C3%A9"),
        (FULLWIDTH, FULLWIDTH_ENCODED),
        ("€", "%E2%82%AC"),
        ("😀", "%F0%9F%98%80"),
        ("a,b:c@d", "a%2Cb%3Ac%40d"),
        ("", ""),
    ],
)
def test_encode_value(value: str, encoded: str) -> None:
    assert encode_params([("k", value)]) == f"k={encoded}"


def test_encode_keeps_order_and_encodes_keys() -> None:
    params = [("z", "1"), ("a b", "x&y=z"), ("a", "2")]
    assert encode_params(params) == "z=1&a%20b=x%26y%3Dz&a=2"


def test_encode_empty() -> None:
    assert encode_params([]) == ""


def test_encode_accepts_any_iterable() -> None:
    assert encode_params(iter(ORDER)) == HMAC_PAYLOAD
    assert encode_params(pair for pair in [("a", "x y"), ("b", "1")]) == "a=x%20y&b=1"


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=6))
def test_encode_matches_rfc3986_quote(params: list[tuple[str, str]]) -> None:
    expected = "&".join(
        f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in params
    )
    assert encode_params(params) == expected


# --- signed_query ---


def test_signed_query_hmac_puts_signature_last() -> None:
    query = encode_params(ORDER)
    assert signed_query(HmacSigner(SECRET), query) == f"{HMAC_PAYLOAD}&signature={HMAC_SIGNATURE}"


def test_signed_query_percent_encodes_base64() -> None:
    signer = _FixedSigner("RSA", RSA_DOC_SIGNATURE)
    result = signed_query(signer, REST_PAYLOAD)
    assert signer.signed == [REST_PAYLOAD.encode()]
    prefix, _, encoded = result.partition("&signature=")
    assert prefix == REST_PAYLOAD
    assert encoded == quote(RSA_DOC_SIGNATURE, safe="")
    assert encoded.startswith("HZ8HOjiJ1s%2FigS9JA%2Bn7%2B7Ti%2F")
    assert encoded.endswith("oXA%3D%3D")
    assert not set(encoded) & set("+/=")


def test_signed_query_ed25519_vector_on_the_wire() -> None:
    result = signed_query(load_signer(private_key=ED25519_PEM), REST_PAYLOAD_NON_ASCII)
    assert result == (
        f"{REST_PAYLOAD_NON_ASCII}&signature="
        "vECjNXSlVOz1DskXXQ866KhikKY8cxajBXKAU0COlYYemqEr45TXiRS%2FjNB3LyHHh48pu7z2S6pTFhmhWNRBBw%3D%3D"
    )


def test_signed_query_rejects_unencoded_text() -> None:
    with pytest.raises(ParameterError) as info:
        signed_query(HmacSigner(SECRET), f"symbol={FULLWIDTH}")
    assert info.value.param == "query"


def test_signed_query_without_params() -> None:
    assert signed_query(_FixedSigner("ED25519", "a+b="), "") == "signature=a%2Bb%3D"


# --- WebSocket API payload (§1.4) ---


def test_ws_api_vector() -> None:
    payload = ws_api_payload(WS_PARAMS)
    assert payload == WS_PAYLOAD.encode()
    assert HmacSigner(SECRET).sign(payload) == WS_SIGNATURE


def test_ws_api_non_ascii_vector_is_not_percent_encoded() -> None:
    params = {
        **WS_PARAMS,
        "symbol": FULLWIDTH,
        "side": "BUY",
        "price": "0.10000000",
        "quantity": "1.00000000",
        "recvWindow": 5000,
    }
    payload = ws_api_payload(params)
    assert f"symbol={FULLWIDTH}&".encode() in payload
    assert HmacSigner(SECRET).sign(payload) == WS_SIGNATURE_NON_ASCII


def test_ws_api_payload_renders_booleans_as_json() -> None:
    assert ws_api_payload({"b": True, "a": False, "c": 3}) == b"a=false&b=true&c=3"
