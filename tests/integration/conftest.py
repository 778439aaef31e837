"""Integration tier: real brokers, servers and `yujing` processes, started by the shared
fixtures (tests/conftest.py) on free loopback ports; every test here is marked integration."""

import pytest

from tests.support.tiers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "integration")
