"""Rate limits: what one person and one place may do a minute, and failed log-ins per account and
per address, counted in the shared cache.

Fixed windows (a minute for messages, votes and direct requests, an hour for new rooms). Every budget counts the person (their API key, account or guest token)
*and* the address they come from, so fresh cookies from one address share one budget, plus the
place they spend it on (a room, or a bot's stateless path). With Redis every process counts in
the same place. A refused request learns how long to wait (Retry-After).
"""

import hashlib
import ipaddress
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext, gettext_noop

WINDOW = 60
ROOM_WINDOW = 3600  # rooms are made rarely: their budget is an hour's
# How long a guest's last address is remembered, so a mute can follow it to their next session.
ADDRESS_MEMORY = 24 * 3600


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused and when to come back."""

    message: str
    retry_after: int


def client_key(request):
    """Who is asking: the API key it carries, else the signed-in account, else the guest's token
    (or session), else the address it came from."""
    if key := getattr(request, "api_key", None):
        return f"key:{key.digest[:16]}"  # not the pk: a database made anew reuses those
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    session = getattr(request, "session", None)
    if session is not None:
        # The token a guest gets on their first post (chat.identity), before the session has a key.
        if token := session.get("author_id"):
            return f"guest:{token}"
        if session.session_key:
            return f"session:{session.session_key}"
    return f"ip:{client_ip(request)}"


def client_ip(request):
    """The client's address. Behind a trusted proxy (TRUST_X_FORWARDED_FOR) it is the right-most
    X-Forwarded-For entry, the one that proxy appended: entries left of it are the client's to forge."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.META.get("REMOTE_ADDR", "unknown")


def counted_address(request):
    """The client's address as every address budget, cap and mute counts it, or "" (not counted) for loopback."""
    return counted(client_ip(request))


def counted(address):
    """address as it is counted: "" for loopback, the one rule for every count by address. A request
    from this very machine is a local proxy that did not say whom it forwards for (set
    TRUST_X_FORWARDED_FOR), or a local tool; holding all of those as one client would hold everyone."""
    try:
        return "" if ipaddress.ip_address(address).is_loopback else address
    except ValueError:  # not an address at all: still one source, counted as such
        return address


def counter_key(key, window_start):
    """The cache key counting key's requests in the window starting at window_start."""
    return f"parley:rate:{key}:{window_start}"


def _count(key, window_start, window=WINDOW):
    """Increment and return this window's count for key."""
    return cache.count(counter_key(key, window_start), window + 5)


def _window(window):
    """The current fixed window of window seconds: (its start, seconds until it ends)."""
    now = time.time()
    window_start = int(now // window) * window
    return window_start, max(1, int(window_start + window - now) + 1)


def _spend(counters, window=WINDOW):
    """Count one request on each (key, limit, sentence) with a key, in turn; the first passed limit's Refusal, else None."""
    window_start, retry_after = _window(window)
    for key, limit, sentence in counters:
        if key and _count(key, window_start, window) > limit:
            # Marked where written, translated here: the request's language is active now.
            return Refusal(gettext(sentence) % {"limit": limit, "wait": retry_after}, retry_after)
    return None


def _address_key(kind, request):
    """The counter of kind for the request's address, or None when the address is not counted."""
    address = counted_address(request)
    return f"{kind}:{address}" if address else None


def _per_address():
    """Requests a minute from one address: RATE_LIMIT_PER_ADDRESS, or one client's budget when unset."""
    return settings.RATE_LIMIT_PER_ADDRESS or settings.RATE_LIMIT_PER_CLIENT


def check_message(request, room_key):
    """Count one message from this client into this room; a Refusal if a limit is passed, else None."""
    return _spend([
        (client_key(request), settings.RATE_LIMIT_PER_CLIENT, gettext_noop("You are sending messages too fast (%(limit)s a minute); try again in %(wait)s s.")),
        (_address_key("addr", request), _per_address(), gettext_noop("Too many messages come from your address (%(limit)s a minute); try again in %(wait)s s.")),
        (f"room:{room_key}", settings.RATE_LIMIT_PER_ROOM, gettext_noop("This room is busy (%(limit)s messages a minute); try again in %(wait)s s.")),
    ])


def check_vote(request):
    """Count one vote from this client; a Refusal if it or its address votes too fast, else None."""
    return _spend([
        (f"vote:{client_key(request)}", settings.RATE_LIMIT_VOTES, gettext_noop("You are voting too fast (%(limit)s votes a minute); try again in %(wait)s s.")),
        (_address_key("vote-addr", request), settings.RATE_LIMIT_VOTES, gettext_noop("Too many votes come from your address (%(limit)s a minute); try again in %(wait)s s.")),
    ])


def check_stateless(request, bot_key):
    """Count one /chat or /v1 request to a bot: its own budget, apart from the rooms' (a flood of
    these never spends a room's); a Refusal if a limit is passed, else None."""
    per_client = settings.RATE_LIMIT_STATELESS_PER_CLIENT or settings.RATE_LIMIT_PER_CLIENT
    return _spend([
        (f"direct:{client_key(request)}", per_client, gettext_noop("You are sending requests too fast (%(limit)s a minute); try again in %(wait)s s.")),
        (_address_key("direct-addr", request), settings.RATE_LIMIT_PER_ADDRESS or per_client,
         gettext_noop("Too many requests come from your address (%(limit)s a minute); try again in %(wait)s s.")),
        (f"direct-bot:{bot_key}", settings.RATE_LIMIT_STATELESS_PER_BOT, gettext_noop("This bot is busy (%(limit)s direct requests a minute); try again in %(wait)s s.")),
    ])


def check_room_creation(request):
    """Count one try at creating a room from this account and its address (ROOM_CREATIONS_PER_HOUR
    each, taken keys and bad forms included); a Refusal if a limit is passed, else None."""
    most = settings.ROOM_CREATIONS_PER_HOUR
    return _spend([
        (f"rooms:{client_key(request)}", most, gettext_noop("You are creating rooms too fast (%(limit)s tries an hour); try again in %(wait)s s.")),
        (_address_key("rooms-addr", request), most, gettext_noop("Too many rooms are being created from your address (%(limit)s tries an hour); try again in %(wait)s s.")),
    ], window=ROOM_WINDOW)


def note_address(sender_tag, request):
    """Remember where a guest last posted from, so a mute of them can hold for that address too."""
    if address := counted_address(request):
        cache.set(f"parley:address:{sender_tag}", address, ADDRESS_MEMORY)


def address_of(sender_tag):
    """The address a sender last posted from (within ADDRESS_MEMORY), or ""."""
    return cache.get(f"parley:address:{sender_tag}") or ""


def _login_keys(request, username):
    """The counters a failed log-in adds to: its account (any case; hashed, whatever was typed) and its address."""
    account = hashlib.sha256(str(username or "").strip().casefold().encode()).hexdigest()[:32]
    keys = [(f"login-account:{account}", settings.LOGIN_FAILURES_PER_ACCOUNT, gettext_noop("Too many failed log-ins for this account; try again in %(wait)s s."))]
    if address := counted_address(request):
        keys.append((f"login-address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS, gettext_noop("Too many failed log-ins for your address; try again in %(wait)s s.")))
    return keys


def check_login(request, username):
    """A Refusal when this account or this address has failed to log in too often lately, else None."""
    window_start, retry_after = _window(settings.LOGIN_FAILURE_WINDOW)
    for key, most, sentence in _login_keys(request, username):
        if (cache.get(counter_key(key, window_start)) or 0) >= most:
            return Refusal(gettext(sentence) % {"wait": retry_after}, retry_after)
    return None


def count_login_failure(request, username):
    """Count one failed log-in against its account and its address."""
    window_start, _ = _window(settings.LOGIN_FAILURE_WINDOW)
    for key, _, _ in _login_keys(request, username):
        _count(key, window_start, settings.LOGIN_FAILURE_WINDOW)
