"""The sweep: replies a dead process left pending or streaming are marked interrupted."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from chat.models import Message

logger = logging.getLogger(__name__)


def sweep_stale_replies(exclude=(), older_than=None):
    """Mark interrupted every active reply no live process has touched lately; returns how many.

    Live workers touch their streaming reply and the replies queued behind it at least every
    heartbeat, so a row older than REPLY_STALE_AFTER (or older_than seconds) belongs to nobody.
    """
    age = settings.REPLY_STALE_AFTER if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=age)
    stale = (
        Message.objects.filter(status__in=Message.ACTIVE, updated_at__lt=cutoff)
        .exclude(pk__in=list(exclude))
        .values_list("pk", flat=True)
    )
    swept = 0
    for pk in list(stale):
        # Conditional: a reply touched, claimed or stopped since the query above is left alone.
        if Message.objects.interrupt(pk, untouched_since=cutoff):
            swept += 1
    if swept:
        logger.warning("sweep: marked %d stale replies interrupted", swept)
    return swept


def rooms_waiting():
    """Rooms with a pending reply: a worker should be answering them."""
    return set(Message.objects.filter(status=Message.Status.PENDING).values_list("room", flat=True).distinct())
