"""Message: a line of a room's conversation, a person's or a program's, or a bot's reply."""

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext_noop

from chat import dom
from chat.identity import Kind, kind_of
from chat.models.events import RoomClock, take_numbers
from chat.models.growth import Growth
from chat.models.transitions import Transitions
from chat.models.turns import Turns
from chat.names import ANONYMOUS


class MessageQuerySet(Transitions, Turns, Growth, models.QuerySet):
    """Messages: what pages and programs read, and the reply job's row logic (transitions, turns, growth)."""

    def shown(self):
        """Messages a page shows: all but those a moderator removed."""
        return self.filter(removed_at__isnull=True)

    def with_asker(self):
        """Each with the sender tag of the message it replies to (Message.asker), read in the same query."""
        # One column of the asked message, not the whole row: select_related built a second model
        # instance per message, most of a 50-message window's cost.
        return self.annotate(asked_by=F("reply_to__sender"))

    def recent(self, room_key, limit=None, fields=None):
        """The room's latest shown messages, newest first (DOM order: #messages is column-reverse);
        with fields, only those columns of each, as tuples."""
        rows = self.shown().filter(room=room_key).order_by("-id")
        # A reply's partial names its asker.
        rows = rows.values_list(*fields) if fields else rows.with_asker()
        return list(rows[: limit or settings.ROOM_PAGE_MESSAGES])

    def before(self, room_key, pk, limit=None):
        """The room's shown messages older than message pk, a page's worth, newest first (scroll back)."""
        rows = self.shown().filter(room=room_key, id__lt=pk).with_asker()
        return list(rows.order_by("-id")[: limit or settings.ROOM_PAGE_MESSAGES])

    def around(self, room_key, pk, limit=None):
        """The room's shown messages around message pk (pk and older ones, and as many newer), newest first."""
        half = (limit or settings.ROOM_PAGE_MESSAGES) // 2
        rows = self.shown().filter(room=room_key).with_asker()
        newer = list(rows.filter(id__gt=pk).order_by("id")[:half])
        return [*reversed(newer), *rows.filter(id__lte=pk).order_by("-id")[:half]]

    def last_spoke(self, rooms):
        """When each of rooms (the registry's) last spoke: {room key: its latest shown message's time, or None}.
        One query that finds each room's latest through the (room, -id) index, never a GROUP BY over the history."""
        from bots.models import Room  # rooms are the bots app's rows; it builds on this one

        # The room as a range of one key, not room = key: PostgreSQL plans a correlated subquery for any room
        # (a share of the whole table) and walked the primary key backwards instead, reading every row for a
        # room with no messages (2.4 s for ten new rooms on a million rows). Ordered by (room, -id), only the
        # room index gives the order, on PostgreSQL and SQLite alike.
        key = OuterRef("key")
        latest = self.shown().filter(room__gte=key, room__lte=key).order_by("room", "-id").values("created_at")[:1]
        found = Room.objects.filter(pk__in=[room.id for room in rooms]).order_by().annotate(latest=Subquery(latest))
        return dict(found.values_list("key", "latest"))

    def events_after(self, room_key, seq, limit=200):
        """The room's rows changed after event number seq, in the order they changed."""
        return list(self.filter(room=room_key, seq__gt=seq).order_by("seq")[:limit])

    def last_event(self, room_key):
        """The room's latest event number (0 before any)."""
        return RoomClock.objects.filter(room=room_key).values_list("last", flat=True).first() or 0


class Message(models.Model):
    """A message in a room, a person's or a bot's; replies move pending → streaming → an end status."""

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
    INTERRUPTED_ERROR = gettext_noop("The server stopped while this reply was being written.")
    RETRYABLE = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

    room = models.CharField(max_length=64, db_index=False, help_text="The key of the room it was said in.")
    bot = models.CharField(max_length=64, blank=True, default="", help_text="The key of the bot writing a reply.")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.CharField(max_length=500, blank=True, default="", help_text="What went wrong, for people.")
    author = models.CharField(max_length=80, blank=True, default="", help_text="Display name of a user message's author.")
    sender = models.CharField(
        max_length=64, blank=True, default="",
        help_text="Who sent it, as a tag (guest:…, user:<id>, key:<id>): for their own messages and mutes.",
    )
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every named transition and growth write, the changes of a live row. Pages drop a
    # replace older than what they show, and a reply job writes only while the row is still at the
    # revision it last wrote: a Stop, a sweep or a Retry claimed elsewhere in between makes its
    # next write match no row.
    revision = models.PositiveIntegerField(default=0, editable=False)
    up_votes = models.PositiveIntegerField(default=0, editable=False)
    down_votes = models.PositiveIntegerField(default=0, editable=False)
    removed_at = models.DateTimeField(null=True, blank=True, help_text="When a moderator removed it from the room.")
    removed_by = models.CharField(max_length=150, blank=True, default="")
    # The room's event number of the row's latest change a reader can see (created, grown, changed
    # status, voted on, removed): the rooms API's SSE ids. Numbers are given under the room's lock,
    # in the transaction of the change, so they commit in order and a reader never sees a gap close
    # behind it: "everything after N" is exact.
    seq = models.PositiveBigIntegerField(default=0, editable=False)
    # The room's event number of the message's creation, which never changes (seq moves on with
    # every change): what a reader's position is compared with to count what is new to them.
    number = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies", editable=False,
        help_text="The person's message a reply answers.",
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["room", "-id"], name="message_room_recent"),
            models.Index(fields=["room", "status", "id"], name="message_room_status"),
            models.Index(fields=["room", "updated_at"], name="message_room_updated"),
            models.Index(fields=["created_at"], name="message_created"),
            models.Index(fields=["room", "seq"], name="message_room_events"),
            # What is new to a reader (chat.unread): shown messages by room and number, removed ones left out.
            models.Index(fields=["room", "number"], name="message_room_numbers", condition=models.Q(removed_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.room} #{self.pk} {self.role} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            return super().save(*args, **kwargs)
        # A new message is an event of its room, numbered in the transaction that creates it; the
        # room's counter stays locked to the end of the caller's transaction (a post's rows with it).
        db = connections[kwargs.get("using") or Message.objects.db]
        # No savepoint inside the caller's transaction: it would cost each row two round trips
        # (SAVEPOINT, RELEASE), and no caller catches a failure here and carries on.
        with transaction.atomic(using=db.alias, savepoint=False):
            (self.seq,) = take_numbers(db, [self.room])
            self.number = self.seq
            return super().save(*args, **kwargs)  # a person's post enters the index with its row (a trigger)

    @property
    def dom_id(self):
        """The element id of this message in a room page."""
        return dom.message(self.pk)

    @property
    def content_dom_id(self):
        """The element id of this message's text, which streamed text grows."""
        return dom.content(self.pk)

    @property
    def feedback_dom_id(self):
        """The element id of a finished reply's votes."""
        return dom.feedback(self.pk)

    @property
    def author_name(self):
        """The name a person's message is shown under (a bot's reply has none)."""
        return (self.author or ANONYMOUS) if self.role == self.Role.USER else None

    @property
    def sender_kind(self):
        """Who sent it: Kind.GUEST, USER or KEY (None for replies and old rows without a sender)."""
        return kind_of(self.sender)

    @property
    def via_api(self):
        """Posted by a program through the API, under a key."""
        return self.sender_kind == Kind.KEY

    @property
    def asker(self):
        """Who a reply answers, as a sender tag ("" for a person's message or an old reply): they may Stop and Retry it."""
        if "asked_by" in self.__dict__:  # read with the row (with_asker)
            return self.asked_by or ""
        return self.reply_to.sender if self.reply_to_id else ""

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def is_removed(self):
        return self.removed_at is not None

    @property
    def is_retryable(self):
        return self.role == self.Role.ASSISTANT and self.status in self.RETRYABLE

    @property
    def takes_feedback(self):
        """Finished bot replies are voted on."""
        return self.role == self.Role.ASSISTANT and self.status == self.Status.COMPLETE
