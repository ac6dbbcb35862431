"""Message: one line of a room's conversation, a person's or a bot's reply."""

from django.db import connection, models, transaction
from django.db.models.functions import Concat
from django.dispatch import Signal
from django.utils import timezone

#: Sent after a streaming reply's row grew: sender=Message, message_id, bot, offset, text.
content_appended = Signal()
#: Sent after a conditional update changed a row without save(): sender=Message, instance.
row_changed = Signal()


class Message(models.Model):
    """A message in a bot's room; assistant replies move pending → streaming → an end status."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        COMPLETE = "complete"
        FAILED = "failed"
        CANCELLED = "cancelled"
        INTERRUPTED = "interrupted"

    ACTIVE = (Status.PENDING, Status.STREAMING)
    INTERRUPTED_ERROR = "The server stopped while this reply was being written."
    RETRYABLE = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

    bot = models.CharField(max_length=64, db_index=False)
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.CharField(max_length=500, blank=True, default="", help_text="What went wrong, for people.")
    author = models.CharField(max_length=80, blank=True, default="", help_text="Display name of a user message's author.")
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every transition() and append(), the changes of a live row. Pages drop a replace
    # older than what they show, and a reply job writes only while the row is still at the
    # revision it last wrote: a Stop, a sweep or a Retry claimed elsewhere in between makes its
    # next write match no row.
    revision = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["bot", "-id"], name="message_room_recent"),
            models.Index(fields=["bot", "status", "id"], name="message_room_status"),
            models.Index(fields=["bot", "updated_at"], name="message_room_updated"),
            models.Index(fields=["created_at"], name="message_created"),
        ]

    def __str__(self):
        return f"{self.bot} #{self.pk} {self.role} ({self.status})"

    @property
    def dom_id(self):
        """The element id of this message in a room page."""
        return f"message_{self.pk}"

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def is_retryable(self):
        return self.role == self.Role.ASSISTANT and self.status in self.RETRYABLE

    @classmethod
    def streaming(cls, pk, revision):
        """Row pk while it streams at revision: what a reply job may still write to."""
        return cls.objects.filter(pk=pk, status=cls.Status.STREAMING, revision=revision)

    @classmethod
    def retry(cls, pk):
        """Make a failed, cancelled or interrupted reply pending again, emptied; the fresh row or None."""
        return cls.transition(
            pk, cls.RETRYABLE, status=cls.Status.PENDING, content="", error="", prompt_tokens=None, completion_tokens=None
        )

    @classmethod
    def transition(cls, pk, from_statuses, *, revision=None, untouched_since=None, **fields):
        """Update row pk only while its status is one of from_statuses; return the fresh row or None.

        The condition is what lets Stop, the sweep and the reply job race safely from any process;
        revision (the job's own) and untouched_since (the sweep's cutoff) narrow it further.
        """
        rows = cls.objects.filter(pk=pk, status__in=from_statuses)
        if revision is not None:
            rows = rows.filter(revision=revision)
        if untouched_since is not None:
            rows = rows.filter(updated_at__lt=untouched_since)
        fields.setdefault("updated_at", timezone.now())
        if not rows.update(revision=models.F("revision") + 1, **fields):
            return None
        instance = cls.objects.get(pk=pk)
        row_changed.send(sender=cls, instance=instance)
        return instance

    @classmethod
    def append(cls, growths):
        """Append text to streaming replies' rows, [(pk, revision, bot, offset, text), ...], in one transaction.

        Returns one bool per growth: False where the reply is no longer the job's to write (stopped).
        """
        grown = []
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Growth is a checkpoint, not the record: the end status is written durably, so
                # this commit need not wait for the disk (a crash loses at most the last flushes).
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            for pk, revision, bot, offset, text in growths:
                updated = cls.streaming(pk, revision).update(
                    content=Concat(models.F("content"), models.Value(text), output_field=models.TextField()),
                    revision=models.F("revision") + 1,
                    updated_at=timezone.now(),
                )
                if updated:
                    content_appended.send(sender=cls, message_id=pk, bot=bot, offset=offset, text=text)
                grown.append(bool(updated))
        return grown
