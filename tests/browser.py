"""A real Chromium driven by Playwright, for page tests."""

import os
import shutil
import uuid

import pytest

from tests.conftest import ci

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_or_skip():
    if not shutil.which(CHROMIUM):
        if ci():
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def own_presence():
    """Server settings for presence counts of its own: a server another test killed leaves its
    share in a shared cache for a minute."""
    return {"CACHE_KEY_PREFIX": f"presence-{uuid.uuid4().hex}"}


async def present(page, count, timeout=15000):
    """Wait until the page counts `count` open pages: the count only comes over the room socket, so
    the page's socket, and those of the others counted, have joined the room."""
    await page.wait_for_function(
        f"parseInt(document.getElementById('presence').textContent) === {count}", timeout=timeout
    )
