"""The test tiers are folders, and each folder's conftest gives its tests the tier's marker,
so ``pytest -m unit`` (or pipeline, integration, browser) selects exactly one folder."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "pipeline", "integration", "browser")


def mark_folder(items: list[pytest.Item], conftest: str, tier: str) -> None:
    """Mark every collected test under the folder of ``conftest`` with ``tier``.

    pytest calls each conftest's collection hook with *all* items, hence the path filter.
    """
    assert tier in TIERS, tier
    folder = Path(conftest).resolve().parent
    for item in items:
        if item.path.resolve().is_relative_to(folder):
            item.add_marker(getattr(pytest.mark, tier))


def untiered(items: list[pytest.Item]) -> list[str]:
    """Tests that carry no tier marker (a test file outside the tier folders)."""
    return [item.nodeid for item in items
            if not any(item.get_closest_marker(tier) for tier in TIERS)]
