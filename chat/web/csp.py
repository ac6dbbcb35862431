"""Content-Security-Policy: a page runs and styles only what this server sends, and the inline blocks
its templates name (`{% inline "script" %}`), by the hash of their text.

Hashes, not nonces: Turbo Drive keeps one document across visits, under the policy of the first
response, so an inline block must be allowed by a value every page shares. The import map's text
is the same on every page, and so is its hash; a per-response nonce would not be.
"""

import base64
import hashlib

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "Content-Security-Policy"
#: The stylesheet Turbo puts in every page's head for its progress bar (Turbo 8's ProgressBar.defaultCSS,
#: verbatim); the browser tests fail on a policy violation when an upgrade changes it.
TURBO_PROGRESS_BAR_CSS = """.turbo-progress-bar {
  position: fixed;
  display: block;
  top: 0;
  left: 0;
  height: 3px;
  background: #0076ff;
  z-index: 2147483647;
  transition:
    width 300ms ease-out,
    opacity 150ms 150ms ease-in;
  transform: translate3d(0, 0, 0);
}
"""
KINDS = ("script", "style")


def source_hash(text):
    """The CSP source expression allowing an inline block whose text is text."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def allow_inline(request, kind, text):
    """Let this response's page run (kind "script") or apply (kind "style") an inline block of text."""
    if kind not in KINDS:
        raise ValueError(f"An inline block is a script or a style, not {kind!r}.")
    if not hasattr(request, "inline_hashes"):
        request.inline_hashes = {kind: set() for kind in KINDS}
    request.inline_hashes[kind].add(source_hash(text))


def policy(request):
    """The policy for request's response: this origin only, no plugins, no framing, and the named inline blocks."""
    hashes = getattr(request, "inline_hashes", {})
    scripts = " ".join(["'self'", *sorted(hashes.get("script", ()))])
    styles = " ".join(["'self'", source_hash(TURBO_PROGRESS_BAR_CSS), *sorted(hashes.get("style", ()))])
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        f"style-src {styles}",
        # The favicon and Swagger UI's icons are data: images; nothing else comes from elsewhere.
        "img-src 'self' data:",
        # 'self' covers the room sockets (ws: and wss: to this host) too.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class ContentSecurityPolicyMiddleware:
    """Sets the policy on every response that has none of its own (sync and async capable)."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self.protect(request, self.get_response(request))

    async def __acall__(self, request):
        return self.protect(request, await self.get_response(request))

    @staticmethod
    def protect(request, response):
        response.headers.setdefault(HEADER, policy(request))
        return response
