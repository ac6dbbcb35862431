"""The pages: the lobby, a room, a bot's direct chat, and one message as a frame for a page's repair."""

import functools

from django.conf import settings
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_GET

from bots import registry
from bots.registry import get_bot_or_404
from chat import access, identity, unread
from chat.delivery import frames, partials, presence
from chat.markdown import render_markdown
from chat.models import Feedback, Message
from chat.web.answers import TURBO_STREAM


# What a first page or post renders, with what they extend and include: compiled at the server's start.
FIRST_TEMPLATES = (
    "base.html", "chat/lobby.html", "chat/room.html", "chat/_synced.html", "chat/_heading.html", "chat/_older_link.html",
    "chat/_message.html", "chat/_feedback.html",
)


def load_pages():
    """Import every view and compile the pages' templates before the server takes a request: the
    first request did it on its thread, holding the interpreter lock every socket needs (about 40 ms)."""
    reverse("chat:lobby")  # the URLconf imported (each view's module with it) and its names mapped
    for name in FIRST_TEMPLATES:  # the template engine made first, its tag libraries (Markdown's) imported
        get_template(name)
    render_markdown("*Parley*")  # its parser built


@require_GET
def lobby(request):
    """The rooms this person may enter, each linking to its page, with its topic, when it last spoke,
    and what is new to them there (whether someone mentioned them in it)."""
    rooms = access.rooms_of(request)
    latest = Message.objects.last_spoke(rooms)
    seen = unread.positions(request)
    news = {} if seen is None else unread.counts(
        [room.key for room in rooms], seen, mention=unread.handle(request), me=identity.peek(request).tag,
    )
    rooms = [{"room": room, "latest": latest.get(room.key), "unread": news.get(room.key, (0, False))} for room in rooms]
    context = {"rooms": rooms, "may_create": rooms_creatable(request), "unread_max": settings.UNREAD_COUNT_MAX}
    return render(request, "chat/lobby.html", context)


def rooms_creatable(request):
    """Whether the lobby offers "New room" to this person (ROOM_CREATION)."""
    who = access.account(request)
    return who is not None and (settings.ROOM_CREATION == "signed_in" or (settings.ROOM_CREATION == "staff" and who.is_staff))


def room_page(request, room, *, error="", content="", status=200, window=None):
    """A room's page as it stands, with a refused post's sentence and text if there is one; window:
    (the messages, the one marked) for a page of older messages or around one, instead of the latest."""
    after = Message.objects.last_event(room.key)  # read before the messages: catch-up starts no later than the page
    me = identity.peek(request)  # writes nothing: a guest's session comes with their first post
    # What is new since the last visit (none kept for a guest without a session); this page marks it read.
    seen = unread.positions(request)
    last_visit = None if seen is None else seen.get(room.key, 0)
    new = 0 if last_visit is None else unread.counts([room.key], {room.key: last_visit})[room.key][0]
    if new:
        unread.mark(request, room.key, after)
    token, votes = get_token(request), functools.partial(Feedback.objects.of, me.tag)
    divider = partials.Divider(last_visit) if new else None
    if window is None:
        messages, oldest = partials.for_page(room.key, token, votes, divider=divider)
    else:
        rows, current = window
        messages = partials.of_rows(rows, token, votes, current=current, divider=divider)
        oldest = rows[-1].pk if rows else None
    context = {
        "me": me,
        "offer": identity.offer(request, me),
        "room": room,
        "moderates": access.moderates_here(request, room),
        "belongs": access.role_here(request, room) is not None,
        "bots": registry.bots(),
        "messages": messages,
        "after": after,
        "heading_mark": frames.heading_mark(room),
        "error": error,
        "content": content,
        "max_chars": settings.MESSAGE_MAX_CHARS,
        "here": presence.here(room.group),
        "window": window is not None,
        "older": _older(room.key, oldest),
        "last_visit": last_visit,
        "catch_up": new >= settings.CATCH_UP_MIN_UNREAD,
        "new": new,
        "unread_max": settings.UNREAD_COUNT_MAX,
        "handle": unread.handle(request),
        "read_every": settings.READ_MARK_INTERVAL,
    }
    return render(request, "chat/room.html", context, status=status)


@require_GET
def room(request, room):
    """A room: its recent messages, the form and the live socket; ?before=<id> the messages before
    one (a frame, when scroll back asks for it), ?around=<id> those around one, marked."""
    room = access.room_for(access.account(request), room)
    for name, read in (("before", Message.objects.before), ("around", Message.objects.around)):
        if name not in request.GET:
            continue
        pk = _message_id(request.GET[name])
        if pk is None:
            problem = f"?{name}= takes a message's number, like ?{name}=1234."
            return render(request, "registration/refused.html", {"problem": problem}, status=400)
        # Scroll back may start at a message removed since its page loaded; a page cannot be around one.
        known = Message.objects.filter(pk=pk, room=room.key) if name == "before" else Message.objects.shown().filter(pk=pk, room=room.key)
        if not known.exists():
            raise Http404(f"There is no message {pk} in this room.")
        messages = read(room.key, pk)
        if name == "before" and "Turbo-Frame" in request.headers:
            return _older_frame(request, room, pk, messages)
        return room_page(request, room, window=(messages, pk if name == "around" else None))
    return room_page(request, room)


def _message_id(text):
    """A message id from the query string, or None when it is not one."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _older(room_key, oldest):
    """The id of the oldest message shown (oldest) when the room has older ones to scroll back to, else None."""
    if oldest is None:
        return None
    # Ordered, so that it walks the room's index from the oldest shown (exists() would drop the order,
    # and PostgreSQL then scans the table hoping to meet a row of the room early).
    older = Message.objects.shown().filter(room=room_key, id__lt=oldest).order_by("-id").values_list("id", flat=True)
    return oldest if older.first() is not None else None


def _older_frame(request, room, pk, messages):
    """The messages before pk as scroll back's frame: what the page's lazy frame is replaced with."""
    me = identity.peek(request)
    shown = partials.of_rows(messages, get_token(request), functools.partial(Feedback.objects.of, me.tag))
    context = {"room": room, "frame": pk, "messages": shown, "older": _older(room.key, messages[-1].pk if messages else None)}
    return render(request, "chat/_older.html", context)


@require_GET
def direct(request, bot):
    """A bot's direct chat page: nothing is saved; the browser sends the whole conversation to /chat with each turn."""
    context = {"bot": get_bot_or_404(bot), "max_query": settings.SSE_MAX_QUERY, "max_chars": settings.MESSAGE_MAX_CHARS}
    return render(request, "chat/direct.html", context)


def message_or_404(request, room_key, pk, *, removed=False, **conditions):
    """The room (if this request may read it) and its message pk (meeting conditions; one a
    moderator removed only if removed), or Http404."""
    room = access.room_for(access.account(request), room_key)
    messages = (Message.objects.all() if removed else Message.objects.shown()).with_asker()
    return room, get_object_or_404(messages, pk=pk, room=room.key, **conditions)


@require_GET
def message_frame(request, room, pk):
    """One message as a replace frame: a page that missed growth frames repairs itself with it."""
    _, message = message_or_404(request, room, pk, removed=True)
    return HttpResponse(frames.current(message), content_type=TURBO_STREAM)
