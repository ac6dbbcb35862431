"""Who may steer a reply (Stop it, Retry it): the person or key whose message it answers, and the
room's moderators; nobody who is muted. Every way in (the pages, the API) asks here."""

from django.utils.translation import gettext, gettext_noop

from chat import access, identity, limits
from chat.models import Mute

NOT_YOURS = gettext_noop("Only the person who asked, or a moderator of this room, can stop or retry this reply.")


def sender_of(request):
    """Who is asking: the API key the request carries, else the page's person (looked at, not made:
    a stranger's refused Stop must not start a session)."""
    if key := getattr(request, "api_key", None):
        return identity.of_key(key)
    return identity.peek(request)


def muted(request, sender, room):
    """The sentence refusing a sender muted in room (or everywhere), or None: a guest is also held by
    a guest's mute made for the address they come from (a new session does not dodge it), and a key
    that acts as an account by that account's mute."""
    address = limits.counted_address(request) if sender.kind == identity.Kind.GUEST else ""
    as_key = sender.kind == identity.Kind.KEY
    tags = [sender.tag]
    if (key := getattr(request, "api_key", None)) is not None and key.user_id:
        tags.append(identity.Sender(identity.Kind.USER, str(key.user_id), "").tag)
    return Mute.objects.refusal(tags, key=as_key, address=address, room=room.key)


def refusal(request, room, reply):
    """The sentence refusing this request's Stop or Retry of reply in room (muted, or neither the
    asker nor a moderator), or None if it may."""
    sender = sender_of(request)
    if why := muted(request, sender, room):
        return why
    if access.moderates(access.account(request), room) or (reply.asker and reply.asker == sender.tag):
        return None
    return gettext(NOT_YOURS)
