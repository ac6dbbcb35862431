"""Where a request's synchronous code runs: on this process's views lane, one long-lived thread."""

from chat import services


class ViewsOnTheirLane:
    """ASGI wrapper for HTTP: Django's views and middleware run on the views lane, never a thread
    of their own per request (a thread, a database connection and a cache client each time)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async with services.views_lane():
            return await self.app(scope, receive, send)
