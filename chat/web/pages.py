"""The pages: the lobby, a room, a bot's direct chat, and one message as a frame for a page's repair."""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from bots import registry
from bots.registry import get_bot_or_404
from chat import access, identity
from chat.delivery import frames, presence
from chat.models import Feedback, Message
from chat.web.answers import TURBO_STREAM


@require_GET
def lobby(request):
    """The rooms this person may enter, each linking to its page, with its topic and when it last spoke."""
    rooms = access.rooms_of(request)
    latest = Message.objects.last_spoke(rooms)
    rooms = [{"room": room, "latest": latest.get(room.key)} for room in rooms]
    return render(request, "chat/lobby.html", {"rooms": rooms, "may_create": rooms_creatable(request)})


def rooms_creatable(request):
    """Whether the lobby offers "New room" to this person (ROOM_CREATION)."""
    who = access.account(request)
    return who is not None and (settings.ROOM_CREATION == "signed_in" or (settings.ROOM_CREATION == "staff" and who.is_staff))


def room_page(request, room, *, error="", content="", status=200):
    """A room's page as it stands, with a refused post's sentence and text if there is one."""
    after = Message.objects.last_event(room.key)  # read before the messages: catch-up starts no later than the page
    me = identity.peek(request)  # writes nothing: a guest's session comes with their first post
    messages = Message.objects.recent(room.key)
    context = {
        "me": me,
        "offer": identity.offer(request, me),
        "room": room,
        "moderates": access.moderates_here(request, room),
        "bots": registry.bots(),
        "messages": messages,
        "my_votes": Feedback.objects.of(me.tag, [m for m in messages if m.takes_feedback]),
        "after": after,
        "error": error,
        "content": content,
        "max_chars": settings.MESSAGE_MAX_CHARS,
        "here": presence.here(room.group),
    }
    return render(request, "chat/room.html", context, status=status)


@require_GET
def room(request, room):
    """A room: its recent messages, the form and the live socket."""
    return room_page(request, access.room_for(access.account(request), room))


@require_GET
def direct(request, bot):
    """A bot's direct chat page: nothing is saved; the browser sends the whole conversation to /chat with each turn."""
    context = {"bot": get_bot_or_404(bot), "max_query": settings.SSE_MAX_QUERY, "max_chars": settings.MESSAGE_MAX_CHARS}
    return render(request, "chat/direct.html", context)


def message_or_404(request, room_key, pk, *, removed=False, **conditions):
    """The room (if this request may read it) and its message pk (meeting conditions; one a
    moderator removed only if removed), or Http404."""
    room = access.room_for(access.account(request), room_key)
    messages = (Message.objects.all() if removed else Message.objects.shown()).select_related("reply_to")
    return room, get_object_or_404(messages, pk=pk, room=room.key, **conditions)


@require_GET
def message_frame(request, room, pk):
    """One message as a replace frame: a page that missed growth frames repairs itself with it."""
    _, message = message_or_404(request, room, pk, removed=True)
    return HttpResponse(frames.current(message), content_type=TURBO_STREAM)
