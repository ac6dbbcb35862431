"""Catch-up: what a page that reconnects must apply again to be in step with its room."""

from django.conf import settings

from chat.models import Message


def catch_up(room_key, after):
    """Messages a page must (re)apply after the room's event number `after`, oldest first so prepends
    keep the order, or None when they are more than a page shows (the page then gets its whole list anew).

    Every message from the oldest one changed since then onward: prepending them in order moves each
    to its right place, as Turbo replaces an element of the same id. Event numbers, unlike times,
    need no slack for clocks of different hosts: nothing the page already had is sent again.
    """
    rooms = Message.objects.filter(room=room_key)
    first = rooms.filter(seq__gt=after).order_by("id").values_list("id", flat=True).first()
    if first is None:
        return []
    limit = settings.ROOM_PAGE_MESSAGES
    newest = list(rooms.filter(id__gte=first).with_asker().order_by("-id")[: limit + 1])
    if len(newest) > limit:
        return None
    newest.reverse()
    return newest
