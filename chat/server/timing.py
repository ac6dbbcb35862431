"""Server-Timing: each HTTP answer says how long the app held it."""

import time

from django.conf import settings


class ServerTiming:
    """ASGI wrapper for HTTP: ``Server-Timing: app;dur=<ms>`` on every response, the time from the
    request reaching the app to its response starting (the wait for a view thread included).

    It tells a slow answer's time in the app apart from the network and the event loop in front of
    it. It wraps ``send``, so it goes inside FlowControl, which needs Daphne's own send. Only with
    SERVER_TIMING (on under DEBUG).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if not settings.SERVER_TIMING:
            return await self.app(scope, receive, send)
        started = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", took)]}
            await send(message)

        return await self.app(scope, receive, timed)
