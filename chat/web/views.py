"""Pages and form endpoints of the rooms. Views save rows; the broadcaster tells the pages."""

import asyncio

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_POST

from bots.registry import BOTS, get_bot_or_404
from chat.delivery import frames, presence
from chat.models import Message
from chat.replies import workers
from chat.text import tidy
from chat.web import limits
from chat.web.authors import author_name

TURBO_STREAM = "text/vnd.turbo-stream.html"


def _wants_stream(request):
    """Turbo's form submissions accept Turbo Stream answers; plain forms get a redirect."""
    return TURBO_STREAM in request.headers.get("Accept", "")


def _answer(request, bot, stream_html=""):
    """Answer a form post: frames for Turbo (the socket does the rest), 303 to the room otherwise."""
    if _wants_stream(request):
        return HttpResponse(stream_html, content_type=TURBO_STREAM)
    response = redirect("chat:room", bot=bot.key)
    response.status_code = 303  # see other: the browser GETs the room
    return response


@require_GET
def lobby(request):
    """The bots, each linking to its room, with when it last spoke."""
    # One index lookup a room (bot, -id), not a GROUP BY over the whole history.
    latest = {key: Message.objects.filter(bot=key).order_by("-id").values_list("created_at", flat=True).first() for key in BOTS}
    bots = [{"bot": bot, "latest": latest[bot.key]} for bot in BOTS.values()]
    return render(request, "chat/lobby.html", {"bots": bots})


def _room_page(request, bot, *, error="", content="", status=200):
    since = timezone.now()  # read before the messages: catch-up starts no later than the page
    context = {
        "author": author_name(request),  # names the guest now, so their posts count under their session
        "bot": bot,
        "messages": Message.objects.recent(bot.key),
        "since": since.isoformat(),
        "error": error,
        "content": content,
        "max_chars": settings.MESSAGE_MAX_CHARS,
        "here": presence.here(bot.group),
    }
    return render(request, "chat/room.html", context, status=status)


@require_GET
def room(request, bot):
    """A room: its recent messages, the form and the live socket."""
    return _room_page(request, get_bot_or_404(bot))


@require_POST
def post_message(request, bot):
    """Save the person's message and a pending reply, start the reply job, answer at once."""
    bot = get_bot_or_404(bot)
    content = tidy(request.POST.get("content", "")).strip()
    problem = ""
    if not content:
        problem = "Write a message before sending."
    elif len(content) > settings.MESSAGE_MAX_CHARS:
        problem = f"Messages are limited to {settings.MESSAGE_MAX_CHARS} characters; this one has {len(content)}."
    status, retry_after = 422, None
    if not problem and (refusal := limits.check_message(request, bot.key)):
        problem, status, retry_after = refusal.message, 429, refusal.retry_after
    if problem:
        # Refused: nothing is saved, and the text stays in the box to send again.
        if _wants_stream(request):
            response = HttpResponse(frames.stream("update", "form_error", escape(problem)), content_type=TURBO_STREAM, status=status)
        else:
            response = _room_page(request, bot, error=problem, content=content, status=status)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response
    with transaction.atomic():
        Message.objects.create(bot=bot.key, role=Message.Role.USER, content=content, author=author_name(request))
        Message.objects.create(bot=bot.key, role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
        transaction.on_commit(lambda: workers.request_reply(bot.key))
    return _answer(request, bot, frames.stream("update", "form_error"))


def _reply_or_404(bot_key, pk):
    """The room's bot and its reply pk, or Http404."""
    bot = get_bot_or_404(bot_key)
    return bot, get_object_or_404(Message, pk=pk, bot=bot.key, role=Message.Role.ASSISTANT)


@require_POST
def stop_message(request, bot, pk):
    """Stop a pending or streaming reply, whichever process streams it: the row is the signal."""
    bot, reply = _reply_or_404(bot, pk)
    if Message.objects.stop(reply.pk):
        workers.stop_here(reply.pk)
    return _answer(request, bot)


@require_POST
def retry_message(request, bot, pk):
    """Answer again, in place, after a failed, cancelled or interrupted reply."""
    bot, reply = _reply_or_404(bot, pk)
    if Message.objects.retry(reply.pk):
        workers.request_reply(bot.key)
    return _answer(request, bot)


@require_GET
def message_frame(request, bot, pk):
    """One message as a replace frame: a page that missed growth frames repairs itself with it."""
    bot = get_bot_or_404(bot)
    message = get_object_or_404(Message, pk=pk, bot=bot.key)
    return HttpResponse(frames.replace(message), content_type=TURBO_STREAM)


async def healthz(request):
    """200 when the database and the channel layer answer, 503 otherwise."""
    checks = {}
    try:
        await sync_to_async(_ping_database)()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        async with asyncio.timeout(3):
            await _ping_channel_layer()
        checks["channel_layer"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["channel_layer"] = f"down: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _ping_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _ping_channel_layer():
    # A send to a group nobody joins reaches the layer's server and leaves nothing behind.
    await get_channel_layer().group_send("parley.healthz", {"type": "healthz.ping"})
