"""Unit tier: pure tests, no broker, no process, no network; every test here is marked unit."""

from tests.support.tiers import mark_folder


def pytest_collection_modifyitems(items):  # noqa: ANN001, ANN201
    mark_folder(items, __file__, "unit")
