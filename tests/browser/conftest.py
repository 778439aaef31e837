"""Browser tier: Debian's headless Chromium driven by playwright against a real `yujing run`;
every test here is marked browser. The services are the shared ones (tests/conftest.py)."""

from pathlib import Path

import pytest

from tests.support.tiers import mark_folder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, "browser")


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), \
        f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
    # playwright (and its node driver) loads only when a browser test runs
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
