"""Where a request's synchronous code runs: on this process's views lane, one long-lived thread."""

import time

from chat import services


class ViewsOnTheirLane:
    """ASGI wrapper for HTTP: Django's views and middleware run on the views lane, never a thread
    of their own per request (a thread, a database connection and a cache client each time).

    Each response says how long the app held it before it started (``Server-Timing: app;dur=<ms>``,
    the wait for a view thread included): what a slow answer spent here, told apart from the network
    and the event loop in front of the app.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        started = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", took)]}
            await send(message)

        async with services.views_lane():
            return await self.app(scope, receive, timed)
