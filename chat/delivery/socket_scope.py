"""A room socket's cookies, session and person, in one copy of its scope.

Channels' ``AuthMiddlewareStack`` copies the scope in each of its three middlewares and in its
session wrapper, and every copy stays, with the coroutine that made it, for the socket's life (about
2.5 KiB an idle socket). Here one copy carries all three, and the middleware keeps no coroutine of its
own: it returns the inner application's. The person is Channels' ``get_user`` of the session, read
when first asked, on the thread where the consumer asks (as Django's own middleware does for a
request), not in a trip to that thread of its own before the consumer starts.
"""

from functools import partial
from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.http import parse_cookie
from django.utils.functional import SimpleLazyObject

# Channels' get_user is wrapped to run on the database thread; the consumer asks from that thread.
read_user = get_user.func


def cookies_of(scope):
    """The socket's cookies, as Channels' CookieMiddleware reads them (the first Cookie header)."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1"))
    return {}


class SocketSession:
    """ASGI middleware for sockets: the scope's cookies, session and user (read when first asked)."""

    def __init__(self, app):
        self.app = app
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, scope, receive, send):
        cookies = cookies_of(scope)
        scope = dict(scope, cookies=cookies, session=self.session_store(cookies.get(settings.SESSION_COOKIE_NAME)))
        scope["user"] = SimpleLazyObject(partial(read_user, scope))
        return self.app(scope, receive, send)
