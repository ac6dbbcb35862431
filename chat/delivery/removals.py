"""A member removed from a room leaves it at once: every process closes that person's pages and
event streams of the room, and they get nothing more from it. A room made members-only has its
pages check again (only then: a topic's edit costs no page a check), and those of people who may
no longer read it close."""

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from bots.models import Membership, Room
from chat.delivery import fanout


@receiver(post_delete, sender=Membership)
def member_removed(sender, instance, **kwargs):
    """Once the removal commits, tell the room's pages in every process whose they may no longer be."""
    key = Room.objects.filter(pk=instance.room_id).values_list("key", flat=True).first()
    if key is not None:
        group, user_id = Room(key=key).group, instance.user_id
        # Rare (a moderator's click): waiting here for the channel layer costs no one else anything.
        transaction.on_commit(lambda: async_to_sync(fanout.remove)(group, user_id), robust=True)


@receiver(pre_save, sender=Room)
def room_saving(sender, instance, update_fields=None, **kwargs):
    """Note whether this save makes the room members-only (it was public, or new), for room_saved."""
    instance._closes = instance.visibility == Room.Visibility.MEMBERS and not (
        update_fields is not None and "visibility" not in update_fields  # its visibility is not written
        or instance.pk is None  # a new room: no page is open in it yet
        or Room.objects.filter(pk=instance.pk, visibility=Room.Visibility.MEMBERS).exists()  # was already
    )


@receiver(post_save, sender=Room)
def room_saved(sender, instance, **kwargs):
    """A room just made members-only has its pages check again who may stay, once the change commits:
    its guests' and outsiders' pages close. Any other save (a topic, a title) checks no page."""
    if getattr(instance, "_closes", False):
        group = instance.group
        transaction.on_commit(lambda: async_to_sync(fanout.recheck)(group), robust=True)
