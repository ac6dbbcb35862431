"""Display names: the rules a name a person or a program picks must follow."""

import unicodedata

from bots import registry

AUTHOR_MAX_CHARS = 40
#: Shown on a person's message that carries no name.
ANONYMOUS = "Guest"
# Control, format (zero-width, bidi overrides), separator, private and unassigned characters: none
# of them belongs in a name shown to everyone.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def check_name(raw):
    """A display name as typed, trimmed: (name, "") when it may be used, ("", why not) otherwise."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        return "", "Type a name: at least one character."
    if len(name) > AUTHOR_MAX_CHARS:
        return "", f"Names are limited to {AUTHOR_MAX_CHARS} characters; this one has {len(name)}."
    if any(unicodedata.category(char) in FORBIDDEN_CATEGORIES for char in name):
        return "", "Names cannot contain control or invisible characters."
    if "<" in name or ">" in name:
        return "", "Names cannot contain < or >."
    called = name.lstrip("@").casefold()
    for bot in registry.bots():
        if called in (bot.key.casefold(), bot.name.casefold()):
            return "", f"{name!r} is a bot's name here; pick another."
    return name, ""
