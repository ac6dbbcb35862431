"""Moderation from the room page: a room's moderators (and staff, everywhere) remove a message, or
mute its sender for an hour."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chat import access, dom, identity, limits
from chat.delivery import frames
from chat.models import Message, Mute
from chat.replies import workers
from chat.web.answers import answer, refuse
from chat.web.pages import message_or_404

MUTE_FOR = timedelta(hours=1)


@require_POST
def remove_message(request, room, pk):
    """Take a message off every page of the room; the admin keeps it, marked removed."""
    # The room first: to someone who may not read it, it does not exist (404), moderator or not.
    room, message = message_or_404(request, room, pk)
    if not access.moderates(access.account(request), room):
        return refuse(request, dom.IDS["notice"], _("Only moderators can remove messages."), 403)
    if Message.objects.remove(message.pk, by=request.user.get_username()) and message.is_active:
        workers.stop_here(message.pk)  # a reply being written stops paying for tokens now
    # A removed question is answered no more: its replies still queued or streaming stop too.
    for reply in message.replies.filter(status__in=Message.ACTIVE).values_list("pk", flat=True):
        workers.stop(reply)
    return answer(request, room)


@require_POST
def mute_author(request, room, pk):
    """Refuse the posts of a message's sender for an hour; the admin lists and lifts mutes."""
    room, message = message_or_404(request, room, pk, removed=True, role=Message.Role.USER)  # removing it first is usual
    if not access.moderates(access.account(request), room):
        return refuse(request, dom.IDS["notice"], _("Only moderators can mute people."), 403)
    if not message.sender:
        return refuse(request, dom.IDS["notice"], _("This message's author cannot be told apart from others: nobody was muted."), 409)
    # A guest's mute also holds for the address they last posted from: a new cookie does not dodge it.
    guest = identity.kind_of(message.sender) == identity.Kind.GUEST
    # Staff mute in every room; a room's own moderator (anyone signed in may make a room) in theirs only.
    mute = Mute.objects.create(
        sender=message.sender, author=message.author, until=timezone.now() + MUTE_FOR,
        address=limits.address_of(message.sender) if guest else "", created_by=request.user.get_username(),
        room="" if request.user.is_staff else room.key,
    )
    notice = f"{mute.author or 'The author'} is muted until {timezone.localtime(mute.until):%H:%M %Z}."
    return answer(request, room, frames.update(dom.IDS["notice"], notice))
