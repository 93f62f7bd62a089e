"""The public names resolve, lazily, to the objects of their home modules."""

from __future__ import annotations

import importlib

import pytest

import binance_margin_async


@pytest.mark.parametrize("name", binance_margin_async.__all__)
def test_public_name_resolves(name: str) -> None:
    value = getattr(binance_margin_async, name)
    home = importlib.import_module(value.__module__)
    assert getattr(home, name) is value


def test_all_is_sorted_and_unique() -> None:
    names = binance_margin_async.__all__
    assert sorted(set(names)) == sorted(names)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        binance_margin_async.no_such_thing  # noqa: B018
