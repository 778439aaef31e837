"""Pipeline tier: the core (Pipeline, rule packs, backtest replay) run in memory, with no
broker and no subprocess; every test here is marked pipeline."""

from tests.support.tiers import mark_folder


def pytest_collection_modifyitems(items):  # noqa: ANN001, ANN201
    mark_folder(items, __file__, "pipeline")
