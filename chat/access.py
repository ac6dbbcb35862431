"""Who may read a room: the one check every way in asks (pages, forms, the rooms API, the room's
event stream, the socket). A room someone may not read is, to them, exactly a room that does not
exist: the same 404, the same refused handshake, no name in any list.

A public room is anyone's, guests included. A members room is its members' (and staff's): a
signed-in person, or a program whose API key acts as one; a guest or a key without an account
never.
"""

from django.contrib.auth import get_user_model
from django.http import Http404

from bots import registry
from bots.models import Membership


def person(user):
    """user when it is an active signed-in account, else None (a guest's AnonymousUser, a deactivated account)."""
    return user if user is not None and user.is_authenticated and user.is_active else None


def account(request):
    """The account a request acts as: its API key's (None for a key without one), else the signed-in person's, else None."""
    key = getattr(request, "api_key", None)
    if key is not None:
        return person(key.user) if key.user_id else None
    return person(getattr(request, "user", None))


def room_for(who, key):
    """The room under key if who (an account, or None) may read it; otherwise Http404, word for
    word what a room that does not exist gets. Every way into a room calls this."""
    room = registry.get_room(key)
    if room is None or not _may_read(who, room, _memberships(who, room)):
        raise Http404(f"There is no room called {str(key)[:40]!r}.")
    return room


def account_may_read(account_id, key):
    """Whether the active account with pk account_id (None: no account) may read the room under key."""
    who = get_user_model().objects.filter(pk=account_id, is_active=True).first() if account_id else None
    try:
        room_for(who, key)
    except Http404:
        return False
    return True


def rooms_for(who):
    """The rooms who may read, in the registry's order: the lobby, the switcher, GET /api/rooms (one query at most)."""
    rooms = registry.rooms()
    if who is not None and who.is_staff:
        return rooms
    mine = _memberships(who, *[room for room in rooms if not room.public])
    # _may_read's rule, inline: every page's switcher runs this over every room of the site.
    return [room for room in rooms if room.public or room.id in mine]


def role_in(who, room):
    """who's role in room (a Membership.Role), or None for no account or no membership."""
    if who is None:
        return None
    return Membership.objects.filter(room_id=room.id, user_id=who.pk).values_list("role", flat=True).first()


def moderates(who, room):
    """Whether who may manage room: its moderators and staff."""
    return who is not None and (who.is_staff or role_in(who, room) == Membership.Role.MODERATOR)


def _memberships(who, *rooms):
    """The ids, among rooms', of the rooms who is a member of (no query when it cannot matter)."""
    if who is None or who.is_staff or not rooms:
        return frozenset()
    ids = [room.id for room in rooms if not room.public]
    if not ids:
        return frozenset()
    mine = Membership.objects.filter(user_id=who.pk).order_by()  # no join for the model's ordering by room key
    if len(ids) == 1:
        mine = mine.filter(room_id=ids[0])
    # For many rooms (the lobby's every members room), a person's few memberships by their own index,
    # not an IN list of every room's id.
    return frozenset(mine.values_list("room_id", flat=True)).intersection(ids)


def _may_read(who, room, memberships):
    if room.public:
        return True
    if who is None:
        return False
    return who.is_staff or room.id in memberships
