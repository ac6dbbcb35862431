"""Pages and form endpoints of the rooms. Views save rows; the broadcaster tells the pages."""

import asyncio
import functools

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from bots.registry import BOTS, ROOMS, get_room_or_404
from chat.delivery import frames, presence
from chat.models import Feedback, Message, Mute
from chat.people import requester
from chat.replies import workers
from chat.replies.posts import say
from chat.text import tidy
from chat.web import limits
from chat.web.answers import TURBO_STREAM, answer, refuse


@require_GET
def lobby(request):
    """The rooms, each linking to its page, with when it last spoke."""
    # One index lookup a room (room, -id), not a GROUP BY over the whole history.
    latest = {
        key: Message.objects.shown().filter(room=key).order_by("-id").values_list("created_at", flat=True).first()
        for key in ROOMS
    }
    rooms = [{"room": room, "latest": latest[room.key]} for room in ROOMS.values()]
    return render(request, "chat/lobby.html", {"rooms": rooms})


def _room_page(request, room, *, error="", content="", status=200):
    since = timezone.now()  # read before the messages: catch-up starts no later than the page
    me = requester(request)  # names a new guest now, so their posts count under their session
    messages = Message.objects.recent(room.key)
    context = {
        "me": me,
        "room": room,
        "bots": BOTS.values(),
        "messages": messages,
        "my_votes": Feedback.objects.of(me.id, [m for m in messages if m.takes_feedback]),
        "since": since.isoformat(),
        "error": error,
        "content": content,
        "max_chars": settings.MESSAGE_MAX_CHARS,
        "here": presence.here(room.group),
    }
    return render(request, "chat/room.html", context, status=status)


@require_GET
def room(request, room):
    """A room: its recent messages, the form and the live socket."""
    return _room_page(request, get_room_or_404(room))


@require_POST
def post_message(request, room):
    """Save the person's message and a pending reply per bot that answers it, start the replies, answer at once."""
    room = get_room_or_404(room)
    content = tidy(request.POST.get("content", "")).strip()
    me = requester(request)
    problem, status, retry_after = "", 422, None
    if not content:
        problem = "Write a message before sending."
    elif len(content) > settings.MESSAGE_MAX_CHARS:
        problem = f"Messages are limited to {settings.MESSAGE_MAX_CHARS} characters; this one has {len(content)}."
    elif muted := Mute.objects.refusal(me.id):
        problem, status = f"{muted} You can read the room meanwhile.", 403
    elif refusal := limits.check_message(request, room.key):
        problem, status, retry_after = refusal.message, 429, refusal.retry_after
    if problem:
        # Refused: nothing is saved, and the text stays in the box to send again.
        page = functools.partial(_room_page, request, room, content=content)
        return refuse(request, "form_error", problem, status, page=page, retry_after=retry_after)
    say(room, content, author=me.name, author_id=me.id)
    return answer(request, room, frames.stream("update", "form_error"))


def message_or_404(room_key, pk, *, removed=False, **conditions):
    """The room and its message pk (meeting conditions; one a moderator removed only if removed), or Http404."""
    room = get_room_or_404(room_key)
    messages = Message.objects.all() if removed else Message.objects.shown()
    return room, get_object_or_404(messages, pk=pk, room=room.key, **conditions)


@require_POST
def stop_message(request, room, pk):
    """Stop a pending or streaming reply, whichever process streams it: the row is the signal."""
    room, reply = message_or_404(room, pk, role=Message.Role.ASSISTANT)
    workers.stop(reply.pk)
    return answer(request, room)


@require_POST
def retry_message(request, room, pk):
    """Answer again, in place, after a failed, cancelled or interrupted reply."""
    room, reply = message_or_404(room, pk, role=Message.Role.ASSISTANT)
    if muted := Mute.objects.refusal(requester(request).id):
        return refuse(request, "room_notice", muted, 403)
    if Message.objects.retry(reply.pk):
        workers.request_reply(room.key)
    return answer(request, room)


@require_GET
def message_frame(request, room, pk):
    """One message as a replace frame: a page that missed growth frames repairs itself with it."""
    room = get_room_or_404(room)
    message = get_object_or_404(Message, pk=pk, room=room.key)
    return HttpResponse(frames.remove(message) if message.removed_at else frames.replace(message), content_type=TURBO_STREAM)


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
