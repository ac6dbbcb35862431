"""The direct SSE path: `/chat` streams a reply to a conversation the client sends; no database."""

import asyncio
import contextvars
import json
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from bots.providers import ProviderError, get_provider
from bots.registry import get_bot

from . import conversation, limits
from .capacity import streaming_slot
from .prompt import afit
from .text import Seams

logger = logging.getLogger(__name__)

_END = object()


def event(name, data):
    """One Server-Sent Event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@require_http_methods(["GET", "POST"])
async def chat(request):
    """GET /chat?bot=&messages= or POST /chat with JSON: `text` events, then `done`."""
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
    try:
        provider = get_provider()
    except ImproperlyConfigured as exc:
        yield event("error", {"error": f"The model is not configured: {exc}"})
        yield event("done", {})
        return
    max_tokens = settings.REPLY_MAX_TOKENS
    # The question itself counts too: a long one is cut to its end rather than overflow the model.
    prompt = await afit(
        bot, [(m["role"], m["content"]) for m in reversed(messages)],
        context_tokens=provider.context_tokens, max_tokens=max_tokens, count_tokens=provider.count_tokens,
    )
    queue = asyncio.Queue()
    pump = asyncio.get_running_loop().create_task(
        _pump(provider, prompt, max_tokens, queue), context=contextvars.Context()
    )
    try:
        while True:
            try:
                # asyncio.timeout, never wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that lands as the wait ends, and a client's disconnect was lost so (seen here).
                async with asyncio.timeout(settings.SSE_KEEPALIVE):
                    item = await queue.get()
            except TimeoutError:
                yield ": keep-alive\n\n"  # a comment: proxies keep the connection, clients ignore it
                continue
            if item is _END:
                break
            if isinstance(item, ProviderError):
                yield event("error", {"error": str(item)})
                break
            yield event("text", {"text": item})
        yield event("done", {})
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def _pump(provider, prompt, max_tokens, queue):
    """Read the provider's stream into the queue, holding a streaming slot; errors travel as items."""
    stream = provider.stream(prompt, max_tokens=max_tokens)
    seams = Seams()
    try:
        async with streaming_slot():
            async for chunk in stream:
                if chunk.text and (text := seams.feed(chunk.text)):
                    queue.put_nowait(text)
            if tail := seams.end():
                queue.put_nowait(tail)
    except ProviderError as exc:
        queue.put_nowait(exc)
    except Exception as exc:  # noqa: BLE001 - the client gets an error event, never a torn stream
        logger.exception("direct reply failed")
        queue.put_nowait(ProviderError(ProviderError.FAILED, f"Parley failed while writing this reply ({type(exc).__name__})."))
    finally:
        await stream.aclose()
        queue.put_nowait(_END)


@require_GET
def page(request, bot):
    """The direct chat page of a bot: the conversation lives in the browser, sent with each turn."""
    found = get_bot(bot)
    if found is None:
        raise Http404(f"There is no bot called {bot!r}.")
    context = {"bot": found, "max_query": settings.SSE_MAX_QUERY, "max_chars": settings.MESSAGE_MAX_CHARS}
    return render(request, "chat/direct.html", context)
