"""Sentences stored in English on rows (a reply's error), shown in each reader's language.

A row is read by people of every language and its frames are rendered once for a whole room, so
it keeps the English sentence, marked for translation where it is written (gettext_noop). Shown on
a page, it is translated here; in a frame, it carries its message id and arguments, and the page's
own JavaScript catalog translates it (static/chat/parley.js, `data-i18n`).
"""

import functools
import re

from django.utils.translation import gettext

from bots.providers.openai import ANSWERED_WITH_ERROR, REPORTED_ERROR
from chat.replies.reading import NOT_CONFIGURED
from chat.replies.workers import BOT_GONE

#: Stored sentences with parts of their own; every other stored sentence is its own message id.
WITH_PARTS = (ANSWERED_WITH_ERROR, REPORTED_ERROR, NOT_CONFIGURED, BOT_GONE)


@functools.cache
def _patterns():
    """Each sentence with parts as a regular expression capturing them by name."""
    patterns = []
    for msgid in WITH_PARTS:
        pieces = re.split(r"%\((\w+)\)s", msgid)
        regex = "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>.*)" for i, piece in enumerate(pieces))
        patterns.append((msgid, re.compile(f"^{regex}$", re.DOTALL)))
    return patterns


def parse(text):
    """The stored sentence text as (message id, {part: value}); an unknown sentence is its own id."""
    for msgid, pattern in _patterns():
        if match := pattern.match(text):
            return msgid, match.groupdict()
    return text, {}


def translated(text):
    """The stored sentence text in the active language."""
    msgid, parts = parse(text)
    return gettext(msgid) % parts if parts else gettext(msgid)
