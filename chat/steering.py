"""Who may steer a reply (Stop it, Retry it): the person or key whose message it answers, and the
room's moderators; nobody who is muted. Every way in (the pages, the API) asks here."""

from chat import access, identity, limits
from chat.models import Mute

NOT_YOURS = "Only the person who asked, or a moderator of this room, can stop or retry this reply."


def is_moderator(user, room):
    """Whether user moderates room: its moderators, and staff in every room."""
    return access.moderates(access.person(user), room)


def sender_of(request):
    """Who is asking: the API key the request carries, else the page's person (looked at, not made:
    a stranger's refused Stop must not start a session)."""
    if key := getattr(request, "api_key", None):
        return identity.of_key(key)
    return identity.peek(request)


def muted(request, sender):
    """The sentence refusing a muted sender, or None: a guest is also held by a guest's mute made
    for the address they come from (a new session does not dodge it)."""
    address = limits.counted_address(request) if sender.kind == identity.Kind.GUEST else ""
    who = "this key" if sender.kind == identity.Kind.KEY else "you"
    return Mute.objects.refusal(sender.tag, who=who, address=address)


def refusal(request, room, reply):
    """The sentence refusing this request's Stop or Retry of reply in room (muted, or neither the
    asker nor a moderator), or None if it may."""
    sender = sender_of(request)
    if why := muted(request, sender):
        return why
    if is_moderator(getattr(request, "user", None), room) or (reply.asker and reply.asker == sender.tag):
        return None
    return NOT_YOURS
