"""The README stays true: its endpoint table and event list follow the code."""

from __future__ import annotations

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
