"""Mutes: a moderator silences a sender for a while."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _


class MuteQuerySet(models.QuerySet):
    def active(self):
        return self.filter(until__gt=timezone.now())

    def until(self, senders, address="", room=""):
        """When the longest mute in force in room of senders (tags), or of a guest at address, ends;
        None if they may post. A mute without a room (staff's) holds in every room."""
        senders = [sender for sender in senders if sender]
        if not senders:
            return None
        held = models.Q(sender__in=senders) | models.Q(address=address) if address else models.Q(sender__in=senders)
        where = models.Q(room="") | models.Q(room=room) if room else models.Q(room="")
        return self.active().filter(held, where).aggregate(until=models.Max("until"))["until"]

    def refusal(self, senders, key=False, address="", room=""):
        """The sentence refusing a muted sender ("A moderator muted you until 14:05 UTC."), or None if
        they may post in room. Pass a guest's address: a guest muted there holds every session from it."""
        until = self.until(senders, address, room)
        if until is None:
            return None
        sentence = _("A moderator muted this key until %(time)s.") if key else _("A moderator muted you until %(time)s.")
        return sentence % {"time": f"{timezone.localtime(until):%H:%M %Z}"}


class Mute(models.Model):
    """A moderator muted a sender: their posts are refused until then."""

    sender = models.CharField(max_length=64, db_index=True, help_text="Who is muted, as a sender tag.")
    author = models.CharField(max_length=80, blank=True, default="", help_text="Their display name when muted.")
    address = models.CharField(
        max_length=64, blank=True, default="", db_index=True,
        help_text="A muted guest's last address: new sessions from it are muted too while the mute lasts.",
    )
    room = models.CharField(
        max_length=40, blank=True, default="", db_index=True,
        help_text="The room a room's moderator muted them in; empty: every room (a mute by staff).",
    )
    until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, default="")

    objects = MuteQuerySet.as_manager()

    def __str__(self):
        return f"{self.author or self.sender} until {self.until:%Y-%m-%d %H:%M}"
