"""Catch-up: what a page that reconnects must apply again to be in step with its room."""

from django.conf import settings
from django.db.models import Q

from chat.models import Message


def catch_up(room_key, since):
    """Messages a page must (re)apply after `since`, oldest first so prepends keep the order, or
    None when they are more than a page shows (the page then gets its whole list anew).

    Every message from the oldest one changed since then (or still unfinished) onward: prepending
    them in order moves each to its right place, as Turbo replaces an element of the same id.
    """
    rooms = Message.objects.filter(room=room_key)
    first = (
        rooms.filter(Q(updated_at__gte=since) | Q(status__in=Message.ACTIVE)).order_by("id").values_list("id", flat=True).first()
    )
    if first is None:
        return []
    limit = settings.ROOM_PAGE_MESSAGES
    newest = list(rooms.filter(id__gte=first).select_related("reply_to").order_by("-id")[: limit + 1])
    if len(newest) > limit:
        return None
    newest.reverse()
    return newest
