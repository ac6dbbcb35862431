"""The pages: the lobby, a room, a bot's direct chat, and one message as a frame for a page's repair."""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from bots import registry
from bots.registry import get_bot_or_404, get_room_or_404
from chat import identity
from chat.delivery import frames, presence
from chat.models import Feedback, Message
from chat.web.answers import TURBO_STREAM


@require_GET
def lobby(request):
    """The rooms, each linking to its page, with when it last spoke."""
    # One index lookup a room (room, -id), not a GROUP BY over the whole history.
    latest = {
        key: Message.objects.shown().filter(room=key).order_by("-id").values_list("created_at", flat=True).first()
        for key in [room.key for room in registry.rooms()]
    }
    rooms = [{"room": room, "latest": latest[room.key]} for room in registry.rooms()]
    return render(request, "chat/lobby.html", {"rooms": rooms})


def room_page(request, room, *, error="", content="", status=200):
    """A room's page as it stands, with a refused post's sentence and text if there is one."""
    since = timezone.now()  # read before the messages: catch-up starts no later than the page
    me = identity.of_request(request)  # names a new guest now, so their posts count under their session
    messages = Message.objects.recent(room.key)
    context = {
        "me": me,
        "room": room,
        "bots": registry.bots(),
        "messages": messages,
        "my_votes": Feedback.objects.of(me.tag, [m for m in messages if m.takes_feedback]),
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
    return room_page(request, get_room_or_404(room))


@require_GET
def direct(request, bot):
    """A bot's direct chat page: nothing is saved; the browser sends the whole conversation to /chat with each turn."""
    context = {"bot": get_bot_or_404(bot), "max_query": settings.SSE_MAX_QUERY, "max_chars": settings.MESSAGE_MAX_CHARS}
    return render(request, "chat/direct.html", context)


def message_or_404(room_key, pk, *, removed=False, **conditions):
    """The room and its message pk (meeting conditions; one a moderator removed only if removed), or Http404."""
    room = get_room_or_404(room_key)
    messages = Message.objects.all() if removed else Message.objects.shown()
    return room, get_object_or_404(messages, pk=pk, room=room.key, **conditions)


@require_GET
def message_frame(request, room, pk):
    """One message as a replace frame: a page that missed growth frames repairs itself with it."""
    _, message = message_or_404(room, pk, removed=True)
    return HttpResponse(frames.current(message), content_type=TURBO_STREAM)
