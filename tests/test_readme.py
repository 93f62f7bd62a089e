"""The README stays true: its endpoint table and event list follow the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from binance_margin_async import events
from binance_margin_async.endpoints import ENDPOINTS, RETIRED

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_two_setup_commands_are_shown() -> None:
    assert "make demo" in README
    assert "make test" in README


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_endpoint_is_in_the_table(name: str) -> None:
    endpoint = ENDPOINTS[name]
    assert f"`{name}()`" in README, f"{name} missing from the endpoint table"
    assert f"`{endpoint.path}`" in README


@pytest.mark.parametrize("retired", RETIRED, ids=lambda r: f"{r.method} {r.path}")
def test_every_retired_endpoint_is_listed(retired: object) -> None:
    assert f"`{retired.path}`" in README  # type: ignore[attr-defined]


@pytest.mark.parametrize("event_type", events.EVENT_TYPES, ids=lambda t: t.__name__)
def test_every_event_type_is_documented(event_type: type) -> None:
    assert f"`{event_type.__name__}`" in README


def _python_blocks() -> list[tuple[int, str]]:
    """Every ```python block of the README with its line number."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", README, re.M | re.S):
        blocks.append((README.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


def test_the_readme_has_python_blocks_to_run() -> None:
    assert len(_python_blocks()) >= 5


@pytest.mark.parametrize(("line", "code"), _python_blocks(), ids=lambda v: str(v)[:12])
def test_every_python_block_runs_verbatim_against_the_fake(
    line: int,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if "REDIS_URL" in code:  # the scale-out block: a real server of the project's own set-up
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
    # The "real keys" block reads the environment: give it keys of the fake's making.
    from binance_margin_async.testing._keys import make_credentials

    creds, _ = make_credentials(5, 1, "readme", "ED25519")
    assert creds.private_key is not None
    pem = tmp_path / "key.pem"
    pem.write_text(creds.private_key)
    monkeypatch.setenv("BINANCE_API_KEY", creds.api_key)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_FILE", str(pem))
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "Traceback" not in out
