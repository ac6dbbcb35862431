"""A real Chromium driven by Playwright, for page tests."""

import os
import re
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


# Chromium reports a blocked script, style, image or connection in the console with these words.
POLICY_VIOLATION = "Content Security Policy"
# The page's own report of each violation, in the console too: it names the directive and what was blocked.
REPORT_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', (e) => console.error("
    f"`{POLICY_VIOLATION}: ${{e.effectiveDirective}} refused ${{e.blockedURI || 'an inline block'}} in ${{e.documentURI}}`));"
)


FUNCTION = re.compile(r"\s*(async\s+)?(function\b|\([^()]*\)\s*=>|[\w$]+\s*=>)")


def as_function_waits(page):
    """Playwright evaluates a wait's expression with eval on every poll, which the policy refuses;
    a function it compiles once (Playwright 1.55 and later) polls under the policy as any page script."""
    wait = page.wait_for_function

    async def wait_for_function(expression, **options):
        if not FUNCTION.match(expression):
            expression = f"() => ({expression})"
        return await wait(expression, **options)

    page.wait_for_function = wait_for_function


class PolicyWatch:
    """A Chromium whose every context notes the Content-Security-Policy violations in its console."""

    def __init__(self, chromium):
        self.chromium = chromium
        self.violations = []

    def __getattr__(self, name):
        return getattr(self.chromium, name)

    async def new_context(self, **options):
        context = await self.chromium.new_context(**options)
        await context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self.note)
        context.on("page", as_function_waits)
        return context

    async def new_page(self, **options):
        return await (await self.new_context(**options)).new_page()

    def note(self, message):
        if POLICY_VIOLATION in message.text:
            self.violations.append(message.text)


def own_presence():
    """Server settings for presence counts of its own: a server another test killed leaves its
    share in a shared cache for a minute."""
    return {"CACHE_KEY_PREFIX": f"presence-{uuid.uuid4().hex}"}


async def present(page, count, timeout=15000):
    """Wait until the page counts `count` open pages: the count only comes over the room socket, so
    the page's socket, and those of the others counted, have joined the room."""
    # A page still being parsed (just navigated to) may not have the count yet.
    await page.wait_for_function(
        f"parseInt(document.getElementById('presence')?.textContent) === {count}", timeout=timeout
    )


async def signed_up(page, base_url, username, password):
    """The page signed up (so signed in) through the sign-up form, at the lobby it sends it to."""
    await page.goto(f"{base_url}/accounts/signup/")
    await page.fill("#id_username", username)
    await page.fill("#id_password1", password)
    await page.fill("#id_password2", password)
    await page.click("form.account button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    return page


async def signed_in(page, base_url, username, password, path):
    """The page signed in through the account form, at path (where the form sends it next)."""
    await page.goto(f"{base_url}/accounts/login/?next={path}")
    await page.fill("#id_username", username)
    await page.fill("#id_password", password)
    await page.click("main [type=submit]")
    await page.wait_for_url(f"{base_url}{path}")
    return page
