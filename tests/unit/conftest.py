"""Unit tier: pure tests, no broker, no process, no network; every test here is marked unit."""

import pytest

from tests.support.tiers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "unit")
