"""The room socket's origin check: the page that opens it must be of this site, scheme, host and port.

Channels' ``AllowedHostsOriginValidator`` compares the host alone, so a page on another port of the
same host (another program's, a developer's) could open sockets with a visitor's cookie. Here the
``Origin`` must be the socket's own origin, as Django's CSRF check has it for forms: the scheme the
client used (``wss`` is ``https``; behind a TLS proxy as ``SECURE_PROXY_SSL_HEADER`` says), the
``Host`` it asked for (one of ``ALLOWED_HOSTS``) and its port, or one of ``CSRF_TRUSTED_ORIGINS``.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme, netloc):
    """(scheme, host, port) with the scheme's default port filled in, or None when unreadable."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, (parts.hostname or "").lower(), port) if parts.hostname else None


def _scheme(scope, headers):
    """The scheme the page used, as Django's request.scheme reads it."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure = proxy
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        if header in headers:
            return "https" if headers[header].decode("latin-1").split(",")[0].strip() == secure else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def allowed(scope):
    """Whether the socket's Origin is this site's own (scheme, host and port) or a trusted one."""
    headers = dict(scope.get("headers", ()))
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    claimed = urlsplit(origin)
    theirs = _origin(claimed.scheme, claimed.netloc)
    if theirs is None:
        return False
    if theirs == _origin(_scheme(scope, headers), host):
        return True
    trusted = (urlsplit(t) for t in settings.CSRF_TRUSTED_ORIGINS if "*" not in t)
    return any(theirs == _origin(t.scheme, t.netloc) for t in trusted)


class SameOriginValidator:
    """ASGI middleware: a socket from any other origin, or none, is refused at the handshake (403)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, scope, receive, send):
        # The inner application's coroutine, not one of this middleware's own kept for the socket's life.
        if scope["type"] == "websocket" and not allowed(scope):
            return WebsocketDenier()(scope, receive, send)
        return self.app(scope, receive, send)
