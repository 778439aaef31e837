"""Pipeline tier: the core (Pipeline, rule packs, backtest replay) run in memory, with no
broker and no subprocess; every test here is marked pipeline."""

import pytest

from tests.support.tiers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "pipeline")
