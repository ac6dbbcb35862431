"""Who sends a message: a guest (by their session), a signed-in account, or a program's API key.

A sender is stored as a tag, ``<kind>:<ref>`` (``guest:Xy3…``, ``user:12``, ``key:4``), on the
messages they send, their votes and their mutes. Pages never see a tag, only a keyed hash of it.

A guest's session is made only when they post, vote or name themselves, never on a page view: a
page offers a new guest a token and nickname, signed into its forms, which their first post adopts.
"""

import enum
import secrets
from dataclasses import dataclass

from django.core import signing

from chat.names import AUTHOR_MAX_CHARS

OFFER_SALT = "parley.guest-offer"
OFFER_MAX_AGE = 24 * 3600  # seconds a page's offer stays good: a page left open all day still posts


class Kind(enum.StrEnum):
    GUEST = "guest"
    USER = "user"
    KEY = "key"


@dataclass(frozen=True)
class Sender:
    """Someone who sends messages: their kind, their reference (session token, account or key id),
    their display name, and whether they chose it (a guest who did not is counted, not named)."""

    kind: Kind
    ref: str
    name: str
    named: bool = True

    @property
    def tag(self):
        """What rows keep of the sender: ``<kind>:<ref>``."""
        return f"{self.kind}:{self.ref}"


def kind_of(tag):
    """The Kind of a stored tag, or None for an empty or unknown one."""
    kind, _, ref = (tag or "").partition(":")
    return Kind(kind) if ref and kind in Kind.__members__.values() else None


def of_session(session, user=None):
    """The sender behind a page or a socket: the signed-in account, else the session's guest (who
    gets a token and a nickname the first time)."""
    if user is not None and user.is_authenticated:
        return Sender(Kind.USER, str(user.pk), (user.get_full_name() or user.get_username())[:AUTHOR_MAX_CHARS])
    # "author_id" is the session key guests have always had their token under (kept: live sessions keep their identity).
    if "author_id" not in session:
        session["author_id"] = secrets.token_urlsafe(9)
    if "name" in session:
        return Sender(Kind.GUEST, session["author_id"], session["name"])
    if "nickname" not in session:
        session["nickname"] = f"Guest {secrets.randbelow(9000) + 1000}"
    return Sender(Kind.GUEST, session["author_id"], session["nickname"][:AUTHOR_MAX_CHARS], named=False)


def of_request(request):
    """The sender making this request from a page: a new guest gets their token now (adopting the
    one their page offered, if it sent it), so it is for posting, voting and naming, not viewing."""
    user = getattr(request, "user", None)
    if "author_id" not in request.session and not (user is not None and user.is_authenticated):
        if offered := _offered(request.POST.get("guest")):
            request.session["author_id"], request.session["nickname"] = offered
    return of_session(request.session, user)


def peek(request):
    """Who views a page, writing nothing: a guest not yet known is shown the token and nickname
    their page will offer (see offer)."""
    user = getattr(request, "user", None)
    if "author_id" in request.session or (user is not None and user.is_authenticated):
        return of_session(request.session, user)
    return Sender(Kind.GUEST, secrets.token_urlsafe(9), f"Guest {secrets.randbelow(9000) + 1000}", named=False)


def offer(request, sender):
    """The signed offer of a new guest's token and nickname for their page's forms, or "" when the
    session already knows who they are."""
    if "author_id" in request.session or sender.kind != Kind.GUEST:
        return ""
    return signing.dumps([sender.ref, sender.name], salt=OFFER_SALT, compress=True)


def of_offer(value):
    """The guest a page's offer names (the token and nickname its first post will take), or None."""
    if offered := _offered(value):
        return Sender(Kind.GUEST, offered[0], offered[1], named=False)
    return None


def _offered(value):
    """The (token, nickname) a page offered, if value is a good offer; else None."""
    if not value or len(value) > 200:
        return None
    try:
        token, nickname = signing.loads(value, salt=OFFER_SALT, max_age=OFFER_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    return str(token)[:16], str(nickname)[:AUTHOR_MAX_CHARS]


def of_key(key, name=None):
    """A program posting with API key key, under name (the key's own name by default)."""
    return Sender(Kind.KEY, str(key.pk), name or key.name[:AUTHOR_MAX_CHARS])
