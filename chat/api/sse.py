"""Server-Sent Events: the one writer of the event-stream format, and the response that carries it."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

#: The keep-alive comment: proxies keep the connection open, clients ignore it.
KEEP_ALIVE = ": keep-alive\n\n"


def event(data, *, name=None, id=None):
    """One event: its id, its name and data as JSON (a str is sent as it is, as OpenAI's [DONE])."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, cls=DjangoJSONEncoder)
    head = (f"id: {id}\n" if id is not None else "") + (f"event: {name}\n" if name else "")
    return f"{head}data: {text}\n\n"


def retry(milliseconds):
    """How soon a client that lost the stream reconnects."""
    return f"retry: {milliseconds}\n\n"


class EventStream(StreamingHttpResponse):
    """A text/event-stream response whose events end the moment the client goes away.

    On a disconnect Django cancels the response, which reaches the events generator only if it is
    waiting on its queue; cancelled while Django sends an event, Django closes just the outermost
    generator it iterates, and this one, with the model's stream it reads, would be left to the
    garbage collector, paying for tokens nobody reads. This response closes it itself.
    """

    def __init__(self, events):
        super().__init__(events, content_type="text/event-stream")
        self.events = events
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # nginx and friends: hand each event on as it comes

    async def __aiter__(self):
        # An empty first part sends the status and headers at once (Daphne holds them until the
        # first body write): a client learns its request was taken even while the reply waits
        # for a streaming slot, rather than hearing nothing until the first keep-alive.
        try:
            yield b""
            async for part in super().__aiter__():
                yield part
        finally:
            await self.events.aclose()
