"""Who may read a room: the one check every way in asks (pages, forms, the rooms API, the room's
event stream, the socket). A room someone may not read is, to them, exactly a room that does not
exist: the same 404, the same refused handshake, no name in any list.

A public room is anyone's, guests included. A members room is its members' (and staff's): a
signed-in person, or a program whose API key acts as one; a guest or a key without an account
never.
"""

from dataclasses import dataclass
from operator import attrgetter

from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils.translation import gettext as _

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
        raise Http404(_("There is no room called %(key)r.") % {"key": str(key)[:40]})
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
    """The rooms who may read, in the registry's order: GET /api/rooms (one query at most); pages ask rooms_of."""
    return _readable(who, _roles(who))


def rooms_of(request):
    """The rooms the account request acts as may read: rooms_for, worked out once per request (the lobby
    and every page's switcher both ask)."""
    standing = _standing(request)
    if standing.rooms is None:
        standing.rooms = _readable(standing.who, standing.roles)
    return standing.rooms


def role_in(who, room):
    """who's role in room (a Membership.Role), or None for no account or no membership."""
    if who is None:
        return None
    return Membership.objects.filter(room_id=room.id, user_id=who.pk).values_list("role", flat=True).first()


def moderates(who, room):
    """Whether who may manage room: its moderators and staff."""
    return _moderator(who, lambda: role_in(who, room))


def moderates_here(request, room):
    """moderates for the account request acts as, from the memberships rooms_of reads (no query of its own)."""
    return _moderator(_standing(request).who, lambda: role_here(request, room))


def role_here(request, room):
    """The role in room of the account request acts as, or None when it is not a member (staff's are not read)."""
    return _standing(request).roles.get(room.id)


def _moderator(who, role):
    return who is not None and (who.is_staff or role() == Membership.Role.MODERATOR)


@dataclass
class _Standing:
    """What one request's account is: who, its role in each room it belongs to, and (once asked) the rooms it may read."""

    who: object
    roles: dict
    rooms: list | None = None


def _standing(request):
    """The request's _Standing, read once per request."""
    who = account(request)
    standing = getattr(request, "_parley_standing", None)
    if standing is None or standing.who is not who:  # keyed by the account: a request that signs someone in reads afresh
        standing = request._parley_standing = _Standing(who, _roles(who))
    return standing


def _roles(who):
    """who's role in each room they belong to, by room id: one query by their own index (none for a guest or staff,
    who read and manage every room)."""
    if who is None or who.is_staff:
        return {}
    # No join for the model's ordering by room key; a person's few memberships, not an IN list of every room's id.
    return dict(Membership.objects.filter(user_id=who.pk).order_by().values_list("room_id", "role"))


def _readable(who, roles):
    """The rooms who, with roles, may read, in the registry's order (_may_read's rule, inline: every page runs it)."""
    if who is not None and who.is_staff:
        return registry.rooms()
    # The public rooms and who's own, not a pass over every room of the site (most are others' members rooms).
    mine = [room for room in registry.rooms_by_id(roles) if not room.public]
    return sorted([*registry.public_rooms(), *mine], key=attrgetter("id"))  # ids rise in the order rooms were made


def _memberships(who, room):
    """{room.id} when who is a member of room, else empty (no query when it cannot matter: a public room, staff, no one)."""
    if who is None or who.is_staff or room.public:
        return frozenset()
    return frozenset(Membership.objects.filter(user_id=who.pk, room_id=room.id).order_by().values_list("room_id", flat=True))


def _may_read(who, room, memberships):
    if room.public:
        return True
    if who is None:
        return False
    return who.is_staff or room.id in memberships
