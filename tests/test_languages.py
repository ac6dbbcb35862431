"""Languages: the catalogs are complete, the JavaScript catalog serves them, and in a real browser a
Spanish reader (Accept-Language, or the footer's switcher) meets no English interface string, in
pages as served and in the frames broadcast to the whole room."""

import re
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from chat.delivery.presence import sentences
from tests.browser import own_presence, present, signed_up
from tests.conftest import ci
from tests.servers import daphne
from tests.test_end_to_end import provider_env

LOCALE = Path(__file__).resolve().parent.parent / "locale"


def test_the_catalogs_are_complete_and_compiled():
    """A string marked in the code with no translation, a fuzzy one, or a .mo not made from its .po fails CI."""
    if not shutil.which("msgattrib"):
        if ci():
            pytest.fail("GNU gettext is missing: ./parley test installs it under CI")
        pytest.skip("needs GNU gettext (apt-get install gettext)")
    try:
        call_command("translations", check=True)
    except CommandError as problem:
        pytest.fail(str(problem))


def po_entries(path):
    """(msgid, msgstr) of each entry of a .po file (the first form of plurals), read with no gettext tool."""
    entries, fields, current = [], {}, None
    for line in [*path.read_text().splitlines(), ""]:
        if match := re.match(r'^(msgid|msgid_plural|msgstr|msgstr\[0\]) (".*")$', line):
            current = match.group(1)
            fields[current] = eval(match.group(2))  # noqa: S307 - a C string literal of our own catalog
        elif line.startswith('"') and current:
            fields[current] += eval(line)  # noqa: S307
        elif not line.strip() and fields:
            entries.append((fields.get("msgid", ""), fields.get("msgstr", fields.get("msgstr[0]", ""))))
            fields, current = {}, None
    return [(msgid, msgstr) for msgid, msgstr in entries if msgid]


def test_every_entry_has_a_spanish_translation_read_without_gettext():
    for catalog in ("django.po", "djangojs.po"):
        entries = po_entries(LOCALE / "es" / "LC_MESSAGES" / catalog)
        assert entries and [msgid for msgid, msgstr in entries if not msgstr] == []
    assert "#, fuzzy" not in (LOCALE / "es" / "LC_MESSAGES" / "django.po").read_text()


def test_presence_is_said_in_each_language_once():
    assert sentences({"a": "Ana", "b": "", "c": ""}) == {"en": "Ana and 2 guests here", "es": "Ana y 2 invitados están aquí"}


def test_the_javascript_catalog_holds_the_server_s_sentences_in_the_asker_s_language(client):
    spanish = client.get("/jsi18n/?l=es", headers={"Accept-Language": "es"})
    english = client.get("/jsi18n/?l=en", headers={"Accept-Language": "en"})
    assert spanish.status_code == english.status_code == 200
    body = spanish.content.decode()
    # Its scripts' own (djangojs) and the frames' sentences (django), not Django's or the admin's.
    assert '"Copiar"' in body and '"Reintentar"' in body and "invitados" in body and "Django administration" not in body
    assert '"Table": "Tabla"' in body  # a reply's table box, named on the page (chat/markdown.py)
    assert "Reintentar" not in english.content.decode()
    assert "max-age=31536000" in spanish["Cache-Control"]


# --- the browser -------------------------------------------------------------------------------

def english_ids():
    """The English message ids a page must not show in Spanish: whole sentences (their parts as
    wildcards) and the literal pieces between a sentence's tags and parts."""
    patterns, pieces = [], set()
    for catalog in ("django.po", "djangojs.po"):
        for msgid, msgstr in po_entries(LOCALE / "es" / "LC_MESSAGES" / catalog):
            if msgid == msgstr:
                continue
            text = re.sub(r"<[^>]+>", "", msgid)
            parts = re.split(r"%\(\w+\)[sr]", text)
            # A sentence that is mostly its parts ("%(first)s and %(last)s") would match any text.
            if len(re.findall(r"[A-Za-z]", "".join(parts))) >= 8:
                patterns.append(re.compile("^" + ".+?".join(re.escape(part) for part in parts) + "$"))
            pieces |= {part.strip() for part in re.split(r"<[^>]+>|%\(\w+\)[sr]", msgid) if len(re.findall(r"[A-Za-z]", part)) >= 2}
    return patterns, pieces


# Every text node of the page and every attribute a person reads or hears, but people's and bots'
# own words (a message's text), what the operator named (rooms, their topics, bots), the languages'
# names (each in its own) and what is typed as it is
# (<kbd>: search's "or" is an operator in every language): whitespace collapsed.
PAGE_TEXTS = """() => {
  const skip = "script, style, template, .message .content, .author, #room-title, .room .topic, .bot-card a, .bot-card p:not(.latest), .mention-menu span, #language option, .lede + direct-chat .content, .result strong, .snippet, kbd";
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest(skip)) continue;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text) texts.push(text);
  }
  for (const element of document.querySelectorAll("[aria-label], [placeholder], [title]")) {
    for (const name of ["aria-label", "placeholder", "title"]) {
      const value = element.getAttribute(name);
      if (value) texts.push(value.replace(/\\s+/g, " ").trim());
    }
  }
  texts.push(document.title);
  return texts;
}"""


async def english_on(page):
    """The interface strings of the page that are still English message ids."""
    patterns, pieces = english_ids()
    texts = await page.evaluate(PAGE_TEXTS)
    return sorted({text for text in texts if text in pieces or any(pattern.match(text) for pattern in patterns)})


async def no_english(page, where):
    assert await page.evaluate("document.documentElement.lang") == "es", where
    assert await english_on(page) == [], f"English on the Spanish {where}"


@pytest.mark.django_db(transaction=True)
async def test_a_spanish_reader_meets_no_english_by_accept_language_or_by_the_switcher(upstream, browser):
    upstream.will(text="Arr, a fine day.\n\n| Oro | Plata |\n|---|---|\n| 3 | 7 |\n", rate=40)
    upstream.will(fault="500")
    with daphne(provider_env(upstream, **own_presence())) as server:
        # 1. The browser asks for Spanish.
        page = await (await browser.new_context(locale="es-ES", extra_http_headers={"Accept-Language": "es"})).new_page()
        await page.goto(f"{server.url}/")
        await no_english(page, "lobby")
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)
        await no_english(page, "room")
        assert await page.locator("#presence").inner_text() == "1 invitado está aquí"
        await page.fill("#content", "Hola")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"] .feedback', timeout=15000)
        await no_english(page, "room after a reply (frames)")
        assert await page.get_attribute(".message.assistant .table", "aria-label") == "Tabla"
        await page.fill("#content", "Otra vez")
        await page.keyboard.press("Enter")
        failed = page.locator('.message.assistant[data-status="failed"]')
        await failed.wait_for(timeout=15000)
        # The error sentence came in a frame rendered once for the room, in no language: the page's catalog said it.
        assert await failed.locator(".error").inner_text() == "El modelo respondió con un error (HTTP 500)."
        assert await failed.locator("button.retry").inner_text() == "Reintentar"
        await no_english(page, "room after a failed reply (frames)")
        for path in ("/direct/PirateBot/", "/accounts/login/", "/accounts/signup/", "/profile", "/search", "/search?q=Hola", "/search?q=-nada"):
            await page.goto(f"{server.url}{path}")
            await no_english(page, path)

        # A person's own pages: signed up, a new room (its fields, their help, its choices, a refused
        # key), the room with its topic, its members page (roles, each Remove saying whom).
        await signed_up(page, server.url, "lectora", "una-frase-bastante-larga")
        await page.goto(f"{server.url}/rooms/new")
        assert await page.locator("form.account label").all_inner_texts() == ["Clave:", "Título:", "Tema:", "Visibilidad:", "Bot:"]
        await no_english(page, "new room form")
        await page.fill("input[name=key]", "una sala")
        await page.fill("input[name=title]", "Tertulia")
        await page.fill("input[name=topic]", "Libros y café")
        await page.select_option("select[name=visibility]", "members")
        await page.click("form.account button[type=submit]")
        await page.wait_for_selector(".errorlist")
        assert "La clave de una sala tiene de 1 a 40" in await page.locator(".errorlist").inner_text()
        await no_english(page, "new room form, refused")
        await page.fill("input[name=key]", "Tertulia")
        await page.click("form.account button[type=submit]")
        await page.wait_for_url(f"{server.url}/rooms/Tertulia/")
        assert await page.locator(".room .topic").inner_text() == "Libros y café"
        await no_english(page, "a person's members room")
        await page.goto(f"{server.url}/rooms/Tertulia/members")
        assert await page.locator(".members .key").all_inner_texts() == ["Moderador"]
        for name in ("Quitar a lectora", "Hacer miembro (lectora)"):  # what it shows, then whom, read aloud
            assert await page.get_by_role("button", name=name, exact=True).count() == 1, name
        await no_english(page, "members page")

        # 2. A browser that asks for English: the scan finds English (it can fail), then the switcher.
        page = await (await browser.new_context(locale="en-US")).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        assert {"Send", "Language"} <= set(await english_on(page))
        await page.select_option("footer select[name=language]", "es")
        await page.click("footer button[type=submit]")
        await page.wait_for_function("document.documentElement.lang === 'es'")
        await present(page, 1)
        await no_english(page, "room after the switcher")
        assert await page.get_attribute(".message.assistant .table", "aria-label") == "Tabla"  # the page's own render
        cookies = {cookie["name"]: cookie["value"] for cookie in await page.context.cookies()}
        assert cookies.get("django_language") == "es"
        await page.goto(f"{server.url}/")  # remembered on the next page
        await no_english(page, "lobby after the switcher")
