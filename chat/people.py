"""Who is in a room: a signed-in user by their account's name, a guest by the name they chose (or a nickname) kept in their session."""

import secrets
import unicodedata
from dataclasses import dataclass

from bots.registry import BOTS

AUTHOR_MAX_CHARS = 40
# Control, format (zero-width, bidi overrides), separator, private and unassigned characters: none
# of them belongs in a name shown to everyone.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@dataclass(frozen=True)
class Person:
    """Someone in a room: a stable id (their session's or account's), their display name, and
    whether they chose it (a guest who did not is counted, not named, in presence)."""

    id: str
    name: str
    named: bool


def person(session, user=None):
    """The person behind a request or a socket, from its session and user (a guest gets an id and a nickname)."""
    if user is not None and user.is_authenticated:
        return Person(f"user:{user.pk}", (user.get_full_name() or user.get_username())[:AUTHOR_MAX_CHARS], True)
    if "author_id" not in session:
        session["author_id"] = secrets.token_urlsafe(9)
    if "name" in session:
        return Person(session["author_id"], session["name"], True)
    if "nickname" not in session:
        session["nickname"] = f"Guest {secrets.randbelow(9000) + 1000}"
    return Person(session["author_id"], session["nickname"][:AUTHOR_MAX_CHARS], False)


def requester(request):
    """The person making this request."""
    return person(request.session, getattr(request, "user", None))


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
    for bot in BOTS.values():
        if called in (bot.key.casefold(), bot.name.casefold()):
            return "", f"{name!r} is a bot's name here; pick another."
    return name, ""
