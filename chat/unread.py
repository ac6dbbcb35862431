"""Unread: each reader's position per room (the room's event number they have seen), what is new to
them since, and where someone mentioned them.

A signed-in person's positions (and a program key's) are rows (ReadPosition); a guest's live in
their session, once they have one (a post, a vote or a name makes it: a page view writes nothing).
A message is new to a reader when its room numbered its creation after their position.
"""

import re

from django.conf import settings
from django.db import connection

from chat.identity import Kind
from chat.models import Message, ReadPosition

SESSION_KEY = "read"  # a guest's positions in their session: {room key: event number}
# A name people can write after @ (and the same rule as the page's script: static/chat/unread.js).
HANDLE = re.compile(r"^[\w.-]{1,40}$")


def reader(request):
    """Whose positions a request reads and keeps: ("user:<id>" or "key:<id>", None), (None, the
    guest's session), or (None, None) for a guest with no session yet (no positions at all)."""
    key = getattr(request, "api_key", None)
    if key is not None:
        return f"{Kind.KEY}:{key.pk}", None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"{Kind.USER}:{user.pk}", None
    session = getattr(request, "session", None)
    return None, (session if session is not None and "author_id" in session else None)


def positions(request):
    """The request's reader's positions, {room key: event number}, or None when it keeps none."""
    tag, session = reader(request)
    if tag:
        return ReadPosition.objects.of(tag)
    return dict(session.get(SESSION_KEY, {})) if session is not None else None


def mark(request, room_key, seen):
    """The request's reader has seen room_key up to event seen (a guest with no session: nothing kept)."""
    tag, session = reader(request)
    if tag:
        ReadPosition.objects.mark(tag, room_key, seen)
    elif session is not None:
        kept = session.get(SESSION_KEY, {})
        if kept.get(room_key, 0) < seen:
            session[SESSION_KEY] = {**kept, room_key: seen}  # a new dict: the session saves on assignment


def handle(request):
    """The name after @ that mentions the request's person (their username; a guest's chosen name of
    one word), or "" when nothing does."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        name = user.get_username()
    else:
        session = getattr(request, "session", None)
        name = session.get("name", "") if session is not None and "author_id" in session else ""
    return name if HANDLE.match(name or "") else ""


def counts(room_keys, seen, *, mention="", me=""):
    """{room key: (unread, mentioned)} for a reader whose positions are seen: unread counts shown
    messages numbered past the position, up to UNREAD_COUNT_MAX; mentioned says whether one of
    them, not by me (a sender tag), writes @mention. One query for every room, whatever their number."""
    if not room_keys:
        return {}
    most = settings.UNREAD_COUNT_MAX
    table = connection.ops.quote_name(Message._meta.db_table)
    # Each room's newest unread rows through the partial (room, number) index, never more than `most`
    # of them, read once: the count and the mention come out as one number, count * 2 + mentioned.
    columns = "m.sender, m.content" if mention else "1"
    newest = (f"SELECT {columns} FROM {table} m WHERE m.room = r.room AND m.number > r.seen "
              f"AND m.removed_at IS NULL ORDER BY m.number DESC LIMIT {int(most)}")
    rooms = " UNION ALL ".join(["SELECT %s AS room, %s AS seen"] * len(room_keys))
    params = [value for key in room_keys for value in (key, seen.get(key, 0))]
    hit = "0"
    if mention:
        escaped = mention.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        hit = "CASE WHEN u.sender <> %s AND lower(u.content) LIKE %s ESCAPE '\\' THEN 1 ELSE 0 END"
        params = [me, f"%@{escaped}%", *params]
    sql = f"SELECT r.room, (SELECT count(*) * 2 + coalesce(max({hit}), 0) FROM ({newest}) u) FROM ({rooms}) r"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {room: (both // 2, bool(both % 2)) for room, both in cursor.fetchall()}


def first_unread(messages, seen):
    """The pk of the oldest of messages (a page's, newest first) numbered past seen, or None."""
    unread = [message.pk for message in messages if message.number > seen]
    return unread[-1] if unread else None
