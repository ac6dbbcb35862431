"""Mutes: a moderator silences a sender for a while."""

from django.db import models
from django.utils import timezone


class MuteQuerySet(models.QuerySet):
    def active(self):
        return self.filter(until__gt=timezone.now())

    def until(self, sender):
        """When the longest mute in force of sender (a tag) ends, or None if they may post."""
        if not sender:
            return None
        return self.active().filter(sender=sender).aggregate(until=models.Max("until"))["until"]

    def refusal(self, sender, who="you"):
        """The sentence refusing a muted sender ("A moderator muted you until 14:05 UTC."), or None if they may post."""
        until = self.until(sender)
        return None if until is None else f"A moderator muted {who} until {timezone.localtime(until):%H:%M %Z}."


class Mute(models.Model):
    """A moderator muted a sender: their posts are refused until then."""

    sender = models.CharField(max_length=64, db_index=True, help_text="Who is muted, as a sender tag.")
    author = models.CharField(max_length=80, blank=True, default="", help_text="Their display name when muted.")
    until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, default="")

    objects = MuteQuerySet.as_manager()

    def __str__(self):
        return f"{self.author or self.sender} until {self.until:%Y-%m-%d %H:%M}"
