"""Display names: the rules a name a person or a program picks must follow."""

import re
import unicodedata

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from bots import registry

AUTHOR_MAX_CHARS = 40
#: Shown on a person's message that carries no name.
ANONYMOUS = "Guest"
# Control, format (zero-width, bidi overrides), separator, private and unassigned characters: none
# of them belongs in a name shown to everyone.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# Letters that look like Latin ones, from Cyrillic and Greek, and the digits that pass for letters:
# a small hand-kept part of Unicode's confusables table (UTS #39), enough that `Сhatbot` (Cyrillic С)
# or `ChatB0t` is taken for `ChatBot`. Capitals have entries of their own (Greek Ν is N, its small ν
# is v). Folding more than needed only refuses more names.
LOOK_ALIKES = {
    # Cyrillic
    "А": "a", "В": "b", "Е": "e", "Ё": "e", "І": "i", "Ї": "i", "Ј": "j", "К": "k", "М": "m", "Н": "h",
    "О": "o", "Р": "p", "С": "c", "Ѕ": "s", "Т": "t", "У": "y", "Х": "x", "Ԛ": "q", "Ԝ": "w", "Ӏ": "l",
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "ӏ": "l",
    "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ь": "b",
    # Greek
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ϲ": "c", "ϳ": "j", "μ": "u",
    # Digits and Latin letters that pass for others
    "0": "o", "1": "l", "ı": "i", "ɡ": "g",
}


def _fold(char):
    """One character as the Latin letters it looks like, in lower case."""
    if char in LOOK_ALIKES:
        return LOOK_ALIKES[char]
    return "".join(LOOK_ALIKES.get(folded, folded) for folded in char.casefold())


def skeleton(name):
    """What a name looks like: NFKC (`Ｃ` is `C`), case folded, look-alikes folded to Latin letters."""
    return "".join(_fold(char) for char in unicodedata.normalize("NFKC", name))


def _looks_like_pattern(name):
    """A regular expression matching every stored username whose skeleton is name's skeleton."""
    sources = {}
    for source in LOOK_ALIKES:
        for variant in (source, source.upper(), source.lower()):
            sources.setdefault(_fold(variant), set()).add(variant)
    parts = []
    for char in skeleton(name):
        options = sorted({char, char.upper(), *sources.get(char, ())})
        parts.append("(?:" + "|".join(re.escape(option) for option in options) + ")")
    return "^" + "".join(parts) + "$"


def _an_account_looks_like(name):
    """True when a signed-in account's username looks like name (usernames are kept NFKC already)."""
    return get_user_model().objects.filter(username__regex=_looks_like_pattern(name)).exists()


def check_name(raw):
    """A display name as typed, trimmed: (name, "") when it may be used, ("", why not) otherwise."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        return "", _("Type a name: at least one character.")
    if len(name) > AUTHOR_MAX_CHARS:
        return "", _("Names are limited to %(most)s characters; this one has %(count)s.") % {"most": AUTHOR_MAX_CHARS, "count": len(name)}
    if any(unicodedata.category(char) in FORBIDDEN_CATEGORIES for char in name):
        return "", _("Names cannot contain control or invisible characters.")
    if "<" in name or ">" in name:
        return "", _("Names cannot contain < or >.")
    called = skeleton(name.lstrip("@"))
    for bot in registry.bots():
        if called in (skeleton(bot.key), skeleton(bot.name)):
            return "", _("%(name)r is, or looks like, a bot's name here; pick another.") % {"name": name}
    if called and _an_account_looks_like(name.lstrip("@")):
        return "", _("%(name)r is, or looks like, the name of someone with an account here; pick another.") % {"name": name}
    return name, ""
