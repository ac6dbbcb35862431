"""Rate limits, counted in the shared cache: messages per minute per client and per room, and
failed log-ins per account and per address.

Fixed windows keyed by client (session, else IP), by room, by account or by address; with Redis
every process counts in the same place. A refused request learns how long to wait (Retry-After).
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW = 60


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused and when to come back."""

    message: str
    retry_after: int


def client_key(request):
    """Who is asking: the API key it carries, else the session if it has one, else the address it came from."""
    if key := getattr(request, "api_key", None):
        return f"key:{key.digest[:16]}"  # not the pk: a database made anew reuses those
    if request.session.session_key:
        return f"session:{request.session.session_key}"
    return f"ip:{client_ip(request)}"


def client_ip(request):
    """The client's address; behind a proxy the left-most X-Forwarded-For when TRUST_X_FORWARDED_FOR."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    return request.META.get("REMOTE_ADDR", "unknown")


def counter_key(key, window_start):
    """The cache key counting key's messages in the window starting at window_start."""
    return f"parley:rate:{key}:{window_start}"


def _count(key, window_start, window=WINDOW):
    """Increment and return this window's count for key."""
    full_key = counter_key(key, window_start)
    cache.add(full_key, 0, window + 5)
    try:
        return cache.incr(full_key)
    except ValueError:  # expired between add and incr
        cache.set(full_key, 1, window + 5)
        return 1


def _window(window):
    """The current fixed window of window seconds: (its start, seconds until it ends)."""
    now = time.time()
    window_start = int(now // window) * window
    return window_start, max(1, int(window_start + window - now) + 1)


def _login_keys(request, username):
    """The counters a failed log-in adds to: its account (any case; hashed, whatever was typed) and its address."""
    account = hashlib.sha256(str(username or "").strip().casefold().encode()).hexdigest()[:32]
    return (
        (f"login-account:{account}", settings.LOGIN_FAILURES_PER_ACCOUNT, "this account"),
        (f"login-address:{client_ip(request)}", settings.LOGIN_FAILURES_PER_ADDRESS, "your address"),
    )


def check_login(request, username):
    """A Refusal when this account or this address has failed to log in too often lately, else None."""
    window_start, retry_after = _window(settings.LOGIN_FAILURE_WINDOW)
    for key, most, whose in _login_keys(request, username):
        if (cache.get(counter_key(key, window_start)) or 0) >= most:
            return Refusal(
                f"Too many failed log-ins for {whose}; try again in {retry_after} s.", retry_after,
            )
    return None


def count_login_failure(request, username):
    """Count one failed log-in against its account and its address."""
    window_start, _ = _window(settings.LOGIN_FAILURE_WINDOW)
    for key, _, _ in _login_keys(request, username):
        _count(key, window_start, settings.LOGIN_FAILURE_WINDOW)


def check_message(request, room_key):
    """Count one message from this client into this room; a Refusal if a limit is passed, else None."""
    window_start, retry_after = _window(WINDOW)
    if _count(client_key(request), window_start) > settings.RATE_LIMIT_PER_CLIENT:
        return Refusal(
            f"You are sending messages too fast ({settings.RATE_LIMIT_PER_CLIENT} a minute); "
            f"try again in {retry_after} s.", retry_after,
        )
    if _count(f"room:{room_key}", window_start) > settings.RATE_LIMIT_PER_ROOM:
        return Refusal(
            f"This room is busy ({settings.RATE_LIMIT_PER_ROOM} messages a minute); try again in {retry_after} s.",
            retry_after,
        )
    return None
