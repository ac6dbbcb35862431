"""The direct SSE path: `/chat` streams a reply to a conversation the client sends; no database."""

import asyncio
import contextvars
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from bots.providers import ProviderError
from bots.registry import get_bot_or_404
from chat.replies.stream import Reader, configured_provider
from chat.replies.workers import streaming_slot
from chat.web import conversation, keys, limits


def event(name, data):
    """One Server-Sent Event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@csrf_exempt  # JSON only (below): another site's page cannot send that without a CORS preflight, never granted
@require_http_methods(["GET", "POST"])
async def chat(request):
    """GET /chat?bot=&messages= or POST /chat with JSON: `text` events, then `done`. An API key, if
    sent, must be valid, and the requests count against its limit instead of the client's."""
    try:
        await sync_to_async(keys.bearer)(request, required=False)
    except keys.Unauthorized as problem:
        return keys.unauthorized(problem)
    try:
        if request.method == "GET":
            bot, messages = conversation.from_query(request.GET, len(request.META.get("QUERY_STRING", "")))
        else:
            bot, messages = conversation.from_body(request.body, request.content_type)
    except conversation.BadConversation as problem:
        return JsonResponse({"error": str(problem)}, status=problem.status)
    refusal = await sync_to_async(limits.check_message)(request, bot.key)
    if refusal:
        response = JsonResponse({"error": refusal.message}, status=429)
        response["Retry-After"] = str(refusal.retry_after)
        return response
    return EventStream(reply_events(bot, messages))


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
        try:
            async for part in super().__aiter__():
                yield part
        finally:
            await self.events.aclose()


async def reply_events(bot, messages):
    """The event stream; closing it (the client went away) closes the upstream at once."""
    async for kind, value in reply_pieces(bot, [(m["role"], m["content"]) for m in reversed(messages)]):
        if kind == "text":
            yield event("text", {"text": value})
        elif kind == "idle":
            yield ": keep-alive\n\n"  # a comment: proxies keep the connection, clients ignore it
        elif value.error:
            yield event("error", {"error": str(value.error)})
    yield event("done", {})


async def reply_pieces(bot, newest_first):
    """A stateless reply as it is read: ("text", piece) as pieces come, ("idle", None) after each
    SSE_KEEPALIVE of silence, and last ("end", the Reader: its error and usage). The conversation
    is (role, content) pairs, newest first; the question itself counts too: a long one is cut to
    its end rather than overflow the model. Closing the generator closes the upstream at once.
    """
    try:
        reader = Reader(configured_provider())
    except ProviderError as exc:
        yield "end", Ended(exc)
        return
    reading = asyncio.get_running_loop().create_task(_read(reader, bot, newest_first), context=contextvars.Context())
    try:
        while True:
            try:
                # asyncio.timeout, never wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that lands as the wait ends, and a client's disconnect was lost so (seen here).
                async with asyncio.timeout(settings.SSE_KEEPALIVE):
                    await reader.arrived.wait()
            except TimeoutError:
                yield "idle", None
                continue
            reader.arrived.clear()
            # Read once: the reader may end while this generator waits at a yield below, and what
            # it read meanwhile is taken on the next turn, with the end.
            ended = reader.ended
            for text in reader.take_each(final=ended):
                if text:
                    yield "text", text
            if ended:
                break
        yield "end", reader
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


class Ended:
    """How a reply that never started ended: its error, no usage."""

    def __init__(self, error):
        self.error, self.usage = error, None


async def _read(reader, bot, newest_first):
    """Read the reply while holding one of this process's streaming slots."""
    async with streaming_slot():
        await reader.run(bot, newest_first)


@require_GET
def page(request, bot):
    """The direct chat page of a bot: the conversation lives in the browser, sent with each turn."""
    context = {"bot": get_bot_or_404(bot), "max_query": settings.SSE_MAX_QUERY, "max_chars": settings.MESSAGE_MAX_CHARS}
    return render(request, "chat/direct.html", context)
