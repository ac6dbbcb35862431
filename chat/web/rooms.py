"""Rooms people make and run: a new room from the lobby (/rooms/new), and its members page
(/rooms/<room>/members), where its moderators add and remove members, change their roles, and
rename the room, change its topic or who may enter."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from bots.models import RESERVED_ROOM_KEYS, Bot, Membership, Room
from chat import access, limits
from chat.text import tidy
from chat.web.answers import see_other


class RoomSettingsForm(forms.ModelForm):
    """What a room's moderators may change on its members page: its title, topic and who may enter."""

    # Declared fields do not take their model field's name: they get it here, in the reader's language.
    visibility = forms.ChoiceField(
        choices=Room.Visibility.choices, initial=Room.Visibility.PUBLIC,
        label=capfirst(Room._meta.get_field("visibility").verbose_name),
        error_messages={"invalid_choice": gettext_lazy('Visibility is "public" or "members".')},
    )

    class Meta:
        model = Room
        fields = ("title", "topic", "visibility")


class RoomForm(RoomSettingsForm):
    """A new room: its key, title, topic, who may enter, and its own bot (an active one, by key) or none."""

    bot = forms.ModelChoiceField(
        Bot.objects.filter(active=True), to_field_name="key", required=False,
        label=capfirst(Room._meta.get_field("bot").verbose_name),
        empty_label=gettext_lazy("None: bots answer only when mentioned"),
        error_messages={"invalid_choice": gettext_lazy("There is no active bot with that key; choose one from the list, or none.")},
    )

    class Meta:
        model = Room
        fields = ("key", "title", "topic", "visibility", "bot")

    def clean_key(self):
        """A key already taken, in any case, or reserved gets one sentence, whoever's room holds it:
        a members room the person may not read must not show through it."""
        key = self.cleaned_data["key"]
        if key.lower() in RESERVED_ROOM_KEYS or Room.objects.filter(key__iexact=key).exists():
            raise forms.ValidationError(unavailable(key))
        return key


def unavailable(key):
    """What a key that cannot be had gets, taken or reserved alike."""
    return _("The key %(key)r is not available; choose another.") % {"key": key}


def _creation_refused(request):
    """Why this request may not create rooms (ROOM_CREATION), as a response; None when it may."""
    if settings.ROOM_CREATION == "off":
        raise Http404(_("Rooms are made by staff in the admin here."))
    if access.account(request) is None:
        return redirect_to_login(request.get_full_path())
    if settings.ROOM_CREATION == "staff" and not request.user.is_staff:
        return render(request, "registration/refused.html", {"problem": _("Only staff can create rooms here.")}, status=403)
    return None


@require_http_methods(["GET", "POST"])
def new_room(request):
    """GET: the form. POST key, title, topic, visibility, bot: the room, its creator its moderator; 302 to it."""
    if refused := _creation_refused(request):
        return refused
    form = RoomForm(request.POST if request.method == "POST" else None)
    # Every try counts, a refused one too: the budget also bounds guessing which keys are taken.
    if request.method == "POST" and (refusal := limits.check_room_creation(request)):
        response = render(request, "chat/new_room.html", {"form": form, "problem": refusal.message}, status=429)
        response["Retry-After"] = str(refusal.retry_after)
        return response
    if form.is_valid():
        try:
            with transaction.atomic():
                room = form.save(commit=False)
                room.created_by = request.user
                room.save()
                Membership.objects.create(room=room, user=request.user, role=Membership.Role.MODERATOR)
        except IntegrityError:  # the same key made by someone else a moment ago
            form.add_error("key", unavailable(form.cleaned_data["key"]))
        else:
            return redirect("chat:room", room=room.key)
    return render(request, "chat/new_room.html", {"form": form}, status=400 if form.errors else 200)


ACTIONS = ("add", "remove", "role", "room")


@require_http_methods(["GET", "POST"])
def members(request, room):
    """GET: the room's members. POST action add with username (and role: member or moderator),
    remove with username, role with username and role (a member's new role), or room with title,
    topic and visibility: by the room's moderators and staff; 303 back here, or the page with a
    sentence (400) when it cannot be done. POST action leave: any member leaves (303 to the lobby)."""
    who = access.account(request)
    room = access.room_for(who, room)
    if request.method == "POST" and request.POST.get("action") == "leave":
        return _leave(request, who, room)
    if not access.moderates(who, room):
        problem = _("Only the room's moderators can manage its members.")
        return render(request, "registration/refused.html", {"problem": problem}, status=403)
    if request.method == "GET":
        return _page(request, room)
    action = request.POST.get("action")
    if action not in ACTIONS:
        return _page(request, room, error=_('Send action "add", "remove", "role" or "room".'), status=400)
    if action == "room":
        form = RoomSettingsForm(request.POST, instance=Room.objects.get(pk=room.id))
        if not form.is_valid():
            return _page(request, room, settings_form=form, status=400)
        # Saved, not updated: every process's registry learns of it, open pages get the new title and
        # topic (chat.delivery.broadcast), and a room made members-only closes its outsiders' pages.
        form.save()
    elif problem := _member(request, room, action):
        return _page(request, room, error=problem, status=400)
    # A moderator who stepped down (or left) goes back to the room: this page is no longer theirs.
    return see_other("chat:members" if access.moderates(who, room) else "chat:room", room=room.key)


def _leave(request, who, room):
    """who leaves room: 303 to the lobby (their other pages of it close), or why not (400)."""
    problem = _member(request, room, "remove", username=who.get_username()) if who else _("Only a room's members can leave it.")
    if problem:
        return render(request, "registration/refused.html", {"problem": problem}, status=400)
    return see_other("chat:lobby")


@transaction.atomic
def _member(request, room, action, username=None):
    """Add, remove or change the role of the member the form names (or username); a sentence when that
    cannot be done. The room's row is locked first: two moderators stepping each other down at once
    cannot both pass the one-moderator check."""
    Room.objects.select_for_update().only("pk").get(pk=room.id)
    username = username or tidy(request.POST.get("username") or "").strip()
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None:
        return _("There is no one called %(name)r here; check the username.") % {"name": username[:40]} if username else _("Type a username.")
    # Adding defaults to a plain member; a change of role must say which.
    role = request.POST.get("role") or (Membership.Role.MEMBER if action == "add" else "")
    if action != "remove" and role not in Membership.Role.values:
        return _('Role is "member" or "moderator".')
    membership = Membership.objects.filter(room_id=room.id, user=user).first()
    if action == "add":
        if membership is not None:
            return _("%(name)s is already a member of this room.") % {"name": username}
        Membership.objects.create(room_id=room.id, user=user, role=role)
        return ""
    if membership is None:
        return _("%(name)s is not a member of this room.") % {"name": username}
    stays_moderator = action == "role" and role == Membership.Role.MODERATOR
    if membership.role == Membership.Role.MODERATOR and not stays_moderator:
        if Membership.objects.filter(room_id=room.id, role=Membership.Role.MODERATOR).count() == 1:
            return _("A room keeps at least one moderator: make someone else one first.")
    if action == "remove":
        membership.delete()  # their open pages close (chat.delivery.removals)
    elif membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return ""


def _page(request, room, *, error="", settings_form=None, status=200):
    listed = Membership.objects.filter(room_id=room.id).select_related("user").order_by("user__username")
    settings_form = settings_form or RoomSettingsForm(initial={name: getattr(room, name) for name in RoomSettingsForm.Meta.fields})
    context = {"room": room, "memberships": listed, "error": error, "form": settings_form, "roles": Membership.Role.choices,
               "moderator": Membership.Role.MODERATOR, "member": Membership.Role.MEMBER}
    return render(request, "chat/members.html", context, status=status)
