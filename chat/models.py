"""Message: one line of a room's conversation, a person's or a bot's reply."""

import hashlib
import secrets

from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models.functions import Length
from django.dispatch import Signal
from django.utils import timezone

#: Sent after a streaming reply's row grew: sender=Message, message_id, room, offset, text.
content_appended = Signal()
#: Sent after a conditional update changed a row without save(): sender=Message, instance.
row_changed = Signal()
#: Sent after a reply's vote counts changed: sender=Message, instance.
votes_changed = Signal()


#: Message.objects.claim_next's answer when another reply in the room is still streaming.
ROOM_BUSY = "busy"


def room_lock_key(room_key):
    """A stable signed 64-bit key for the room's advisory lock (turn-taking across processes)."""
    return int.from_bytes(hashlib.blake2b(f"parley.room.{room_key}".encode(), digest_size=8).digest(), "big", signed=True)


def take_numbers(db, room_keys):
    """The next event number of each room in room_keys (a room listed twice gets two), taken in the
    current transaction from the room's counter (RoomClock), whose row then stays locked until commit:
    a room's numbers commit one at a time and in order, so "rows numbered above N" is exactly what
    happened after event N. Callers pass several rooms sorted, so no two transactions deadlock."""
    table = db.ops.quote_name(RoomClock._meta.db_table)
    numbers = []
    with db.cursor() as cursor:
        for key in room_keys:
            cursor.execute(
                f"INSERT INTO {table} (room, last) VALUES (%s, 1) "
                f"ON CONFLICT (room) DO UPDATE SET last = {table}.last + 1 RETURNING last",
                [key],
            )
            numbers.append(cursor.fetchone()[0])
    return numbers


def dom_id(pk):
    """The element id of message pk in a room page: the one place it is spelled."""
    return f"message_{pk}"


def content_dom_id(pk):
    """The element id of message pk's text."""
    return f"{dom_id(pk)}_content"


class MessageQuerySet(models.QuerySet):
    """Messages, and the row logic of replies: every change of a live reply is a named transition.

    A transition updates a row only while its status allows it (and, for the reply job, only at
    the revision the job last wrote): that condition is what lets Stop, the sweep, Retry and the
    job race safely from any process. Each returns the fresh row, or None when it lost the race.
    """

    def shown(self):
        """Messages a page shows: all but those a moderator removed."""
        return self.filter(removed_at__isnull=True)

    def recent(self, room_key, limit=None):
        """The room's latest shown messages, newest first (DOM order: #messages is column-reverse)."""
        return list(self.shown().filter(room=room_key).order_by("-id")[: limit or settings.ROOM_PAGE_MESSAGES])

    def streaming(self, pk, revision):
        """Row pk while it streams at revision: what a reply job may still write to."""
        return self.filter(pk=pk, status=Message.Status.STREAMING, revision=revision)

    # --- named transitions ---------------------------------------------------------------------

    def claim(self, pk, model):
        """pending → streaming, for the job that will write it."""
        return self._transition(pk, [Message.Status.PENDING], status=Message.Status.STREAMING, model=model)

    def stop(self, pk):
        """pending or streaming → cancelled: a person pressed Stop (the job sees it in the row)."""
        return self._transition(pk, Message.ACTIVE, status=Message.Status.CANCELLED)

    def finish(self, pk, revision, *, status, content, error="", usage=None):
        """streaming → complete or failed, with the whole text: the job's last write."""
        fields = {"status": status, "content": content, "error": error}
        if usage is not None:
            fields.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        return self._transition(pk, [Message.Status.STREAMING], revision=revision, **fields)

    def fail(self, pk, error, *, revision=None):
        """pending or streaming → failed, keeping the text: the job broke, or never could start."""
        return self._transition(pk, Message.ACTIVE, revision=revision, status=Message.Status.FAILED, error=error)

    def interrupt(self, pk, *, revision=None, content=None, untouched_since=None):
        """pending or streaming → interrupted: its server shut down (with the text it had), or died (the sweep)."""
        fields = {} if content is None else {"content": content}
        return self._transition(
            pk, Message.ACTIVE, revision=revision, untouched_since=untouched_since,
            status=Message.Status.INTERRUPTED, error=Message.INTERRUPTED_ERROR, **fields,
        )

    def retry(self, pk):
        """failed, cancelled or interrupted → pending again, emptied."""
        return self._transition(
            pk, Message.RETRYABLE, status=Message.Status.PENDING, content="", error="",
            prompt_tokens=None, completion_tokens=None,
        )

    def remove(self, pk, by):
        """A moderator takes a message off every page (the row stays, marked): the fresh row, or None
        if it was already removed. A reply still being written is cancelled in the same write."""
        now = timezone.now()
        status = models.Case(
            models.When(status__in=Message.ACTIVE, then=models.Value(Message.Status.CANCELLED)), default=models.F("status")
        )
        with transaction.atomic(using=self.db):
            if not self.filter(pk=pk, removed_at__isnull=True).update(
                removed_at=now, removed_by=by[:150], status=status, revision=models.F("revision") + 1, updated_at=now,
                seq=self._number(pk),
            ):
                return None
        instance = self.get(pk=pk)
        row_changed.send(sender=Message, instance=instance)
        return instance

    def _transition(self, pk, from_statuses, *, revision=None, untouched_since=None, **fields):
        rows = self.filter(pk=pk, status__in=from_statuses)
        if revision is not None:
            rows = rows.filter(revision=revision)
        if untouched_since is not None:
            rows = rows.filter(updated_at__lt=untouched_since)
        fields.setdefault("updated_at", timezone.now())
        with transaction.atomic(using=self.db):
            # A transition that loses its race has taken a number no row carries: a gap, never a repeat.
            if not rows.update(revision=models.F("revision") + 1, seq=self._number(pk), **fields):
                return None
        instance = self.get(pk=pk)
        row_changed.send(sender=Message, instance=instance)
        return instance

    def _number(self, pk):
        """The next event number of message pk's room (0 if there is no such message)."""
        room = self.filter(pk=pk).values_list("room", flat=True).first()
        return take_numbers(connections[self.db], [room])[0] if room else 0

    def events_after(self, room_key, seq, limit=200):
        """The room's rows changed after event number seq, in the order they changed."""
        return list(self.filter(room=room_key, seq__gt=seq).order_by("seq")[:limit])

    def last_event(self, room_key):
        """The room's latest event number (0 before any)."""
        return RoomClock.objects.filter(room=room_key).values_list("last", flat=True).first() or 0

    # --- turn-taking and the reply job's other row work -----------------------------------------

    def claim_next(self, room_key, model):
        """Claim the room's oldest pending reply for this process: the fresh row, ROOM_BUSY while
        another reply of the room streams, or None if none waits.

        The row is the lock: on PostgreSQL the look and the claim run under a transaction-scoped
        advisory lock on the room, so two processes cannot both see an idle room and claim at once.
        SQLite serves one process, whose room workers already take turns.
        """
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [room_lock_key(room_key)])
            room = self.filter(room=room_key)
            if room.filter(status=Message.Status.STREAMING).exists():
                return ROOM_BUSY
            pk = (room.filter(role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
                  .order_by("id").values_list("id", flat=True).first())
            if pk is None:
                return None
            claimed = self.claim(pk, model)
            self.touch_queue(room_key)
            # Lost to a Stop in between: the queue is not empty for that, so look again.
            return claimed or ROOM_BUSY

    def fail_pending(self, room_key, error):
        """Fail every reply waiting in the room (the model cannot be reached at all)."""
        for pk in self.filter(room=room_key, status=Message.Status.PENDING).values_list("pk", flat=True):
            self.fail(pk, error)

    def touch_queue(self, room_key):
        """Heartbeat for the replies queued in a room (no broadcast: nothing a page shows changed)."""
        self.filter(room=room_key, status=Message.Status.PENDING).update(updated_at=timezone.now())

    def touch_streaming(self, pk, revision, room_key):
        """Heartbeat for a streaming reply and the replies queued behind it; False when it is no longer the job's."""
        alive = self.streaming(pk, revision).update(updated_at=timezone.now())
        self.touch_queue(room_key)
        return bool(alive)

    def still_streaming(self, pk, revision):
        """Whether the job may still write to reply pk (False: stopped, swept or taken by a Retry)."""
        return self.streaming(pk, revision).exists()

    def landed(self, pk, revision, length):
        """Whether a write whose answer was lost (a dropped connection after COMMIT) did land."""
        return self.streaming(pk, revision).annotate(length=Length("content")).filter(length=length).exists()

    def append(self, growths):
        """Append text to streaming replies' rows, [(pk, revision, room, offset, text), ...], in one transaction.

        Returns one bool per growth: False where the reply is no longer the job's to write (stopped).
        One statement for the whole batch, in SQL both PostgreSQL and SQLite (3.35+) speak: at ten
        flushes a second per reply, building an ORM update per row cost the database thread more
        than the database did.
        """
        db = connections[self.db]
        table = db.ops.quote_name(Message._meta.db_table)
        # A row takes one change per statement: a reply's second growth in a batch (none today)
        # goes in the next statement, where its revision is judged after the first's.
        rounds, seen = [], {}
        for index, growth in enumerate(growths):
            round_number = seen[growth[0]] = seen.get(growth[0], -1) + 1
            if round_number == len(rounds):
                rounds.append([])
            rounds[round_number].append(index)
        grown = [False] * len(growths)
        with transaction.atomic(using=self.db):
            # One event number per growth, rooms in one order (see take_numbers).
            order = sorted(range(len(growths)), key=lambda index: growths[index][2])
            numbers = dict(zip(order, take_numbers(db, [growths[index][2] for index in order])))
            with db.cursor() as cursor:
                if db.vendor == "postgresql":
                    # Growth is a checkpoint, not the record: the end status is written durably, so
                    # this commit need not wait for the disk (a crash loses at most the last flushes).
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                for indexes in rounds:
                    params = [db.ops.adapt_datetimefield_value(timezone.now())]
                    for index in indexes:
                        pk, revision, _, _, text = growths[index]
                        params += [pk, revision, text, numbers[index]]
                    rows = ", ".join(["(%s, %s, %s, %s)"] * len(indexes))  # VALUES: no 500-term limit, unlike UNION ALL on SQLite
                    cursor.execute(
                        f"UPDATE {table} SET content = {table}.content || grown.text, "
                        f"revision = {table}.revision + 1, updated_at = %s, seq = grown.seq "
                        f"FROM (SELECT column1 AS id, column2 AS revision, column3 AS text, column4 AS seq "
                        f"FROM (VALUES {rows}) AS v) AS grown "
                        f"WHERE {table}.id = grown.id AND {table}.status = 'streaming' AND {table}.revision = grown.revision "
                        f"RETURNING {table}.id",
                        params,
                    )
                    landed = {pk for (pk,) in cursor.fetchall()}
                    for index in indexes:
                        grown[index] = growths[index][0] in landed
            for (pk, _, room, offset, text), ok in zip(growths, grown):
                if ok:
                    content_appended.send(sender=Message, message_id=pk, room=room, offset=offset, text=text)
        return grown


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
    INTERRUPTED_ERROR = "The server stopped while this reply was being written."
    RETRYABLE = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

    room = models.CharField(max_length=64, db_index=False, help_text="The key of the room it was said in.")
    bot = models.CharField(max_length=64, blank=True, default="", help_text="The key of the bot writing a reply.")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.CharField(max_length=500, blank=True, default="", help_text="What went wrong, for people.")
    author = models.CharField(max_length=80, blank=True, default="", help_text="Display name of a user message's author.")
    author_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Who posted it (a session's or an account's id): for their own messages and mutes."
    )
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every named transition and append(), the changes of a live row. Pages drop a replace
    # older than what they show, and a reply job writes only while the row is still at the
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
        ]

    def __str__(self):
        return f"{self.room} #{self.pk} {self.role} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            return super().save(*args, **kwargs)
        # A new message is an event of its room, numbered in the transaction that creates it; the
        # room's counter stays locked to the end of the caller's transaction (a post's rows with it).
        db = connections[kwargs.get("using") or Message.objects.db]
        with transaction.atomic(using=db.alias):
            (self.seq,) = take_numbers(db, [self.room])
            return super().save(*args, **kwargs)

    @property
    def dom_id(self):
        """The element id of this message in a room page."""
        return dom_id(self.pk)

    @property
    def content_dom_id(self):
        """The element id of this message's text, which streamed text grows."""
        return content_dom_id(self.pk)

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def feedback_dom_id(self):
        """The element id of a finished reply's votes."""
        return f"{self.dom_id}_feedback"

    @property
    def is_retryable(self):
        return self.role == self.Role.ASSISTANT and self.status in self.RETRYABLE

    @property
    def takes_feedback(self):
        """Finished bot replies are voted on."""
        return self.role == self.Role.ASSISTANT and self.status == self.Status.COMPLETE


class FeedbackQuerySet(models.QuerySet):
    def cast(self, reply, voter, value):
        """Record voter's vote on a finished reply: "up", "down" or "none" (take it back); returns the
        reply with its counts, which are recounted in the same transaction so they never drift."""
        wanted = None if value == "none" else Feedback.Value[value.upper()]
        with transaction.atomic():
            # The room's next number first: it locks the room's counter, so votes on a reply take turns.
            (number,) = take_numbers(connections[self.db], [reply.room])
            had = self.select_for_update().filter(message=reply, voter=voter).values_list("value", flat=True).first()
            if had == wanted:
                return reply  # the same vote again changes nothing, and tells no page
            if wanted is None:
                self.filter(message=reply, voter=voter).delete()
            else:
                self.update_or_create(message=reply, voter=voter, defaults={"value": wanted})
            votes = self.filter(message=reply)
            Message.objects.filter(pk=reply.pk).update(
                seq=number,
                up_votes=votes.filter(value=Feedback.Value.UP).count(),
                down_votes=votes.filter(value=Feedback.Value.DOWN).count(),
                updated_at=timezone.now(),  # a page that reconnects catches up on the counts too
            )
            reply = Message.objects.get(pk=reply.pk)
            votes_changed.send(sender=Message, instance=reply)
        return reply

    def of(self, voter, replies):
        """voter's votes on replies, as {message id: "up" or "down"}."""
        rows = self.filter(voter=voter, message__in=replies).values_list("message_id", "value")
        return {pk: Feedback.Value(value).name.lower() for pk, value in rows}


class Feedback(models.Model):
    """One person's thumbs up or down on a bot's reply."""

    class Value(models.IntegerChoices):
        UP = 1, "up"
        DOWN = -1, "down"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    voter = models.CharField(max_length=64, help_text="The voter's session or account id.")
    value = models.SmallIntegerField(choices=Value.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FeedbackQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "voter"], name="feedback_one_vote_per_person")]
        verbose_name_plural = "feedback"

    def __str__(self):
        return f"{self.get_value_display()} on #{self.message_id}"


class MuteQuerySet(models.QuerySet):
    def active(self):
        return self.filter(until__gt=timezone.now())

    def until(self, author_id):
        """When author_id's longest mute in force ends, or None if they may post."""
        if not author_id:
            return None
        return self.active().filter(author_id=author_id).aggregate(until=models.Max("until"))["until"]

    def refusal(self, author_id, who="you"):
        """The sentence refusing a muted author ("A moderator muted you until 14:05 UTC."), or None if they may post."""
        until = self.until(author_id)
        return None if until is None else f"A moderator muted {who} until {timezone.localtime(until):%H:%M %Z}."


class Mute(models.Model):
    """A moderator muted a person: their posts are refused until then."""

    author_id = models.CharField(max_length=64, db_index=True)
    author = models.CharField(max_length=80, blank=True, default="", help_text="Their display name when muted.")
    until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, default="")

    objects = MuteQuerySet.as_manager()

    def __str__(self):
        return f"{self.author or self.author_id} until {self.until:%Y-%m-%d %H:%M}"


class RoomClock(models.Model):
    """A room's last event number: what Message.seq is taken from. A counter of its own, not the
    highest seq in the room, so that deleting or pruning messages never hands a number out twice."""

    room = models.CharField(max_length=64, primary_key=True)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.room} at event {self.last}"


class ApiKeyQuerySet(models.QuerySet):
    def issue(self, name):
        """A new key named name: (the row, the key itself), which is shown once and stored only hashed."""
        secret = f"parley_{secrets.token_urlsafe(32)}"
        return self.create(name=name, prefix=secret[:12], digest=ApiKey.digest_of(secret)), secret

    def authenticate(self, secret):
        """The live key that secret is, or None; its last use is noted (at most once a minute: no write per request)."""
        key = self.filter(digest=ApiKey.digest_of(secret), revoked_at__isnull=True).first()
        if key is not None:
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                self.filter(pk=key.pk).update(last_used_at=now)
                key.last_used_at = now
        return key


    def count_usage(self, key, usage):
        """Add a stateless reply's tokens to the key that asked for it (one UPDATE, no race)."""
        self.filter(pk=key.pk).update(
            prompt_tokens=models.F("prompt_tokens") + (usage.prompt_tokens or 0),
            completion_tokens=models.F("completion_tokens") + (usage.completion_tokens or 0),
        )


class ApiKey(models.Model):
    """A program's key: sent as `Authorization: Bearer <key>`, kept only as its SHA-256 (keys are
    32 random bytes: a slow password hash would add nothing but a cost per request)."""

    name = models.CharField(max_length=100, help_text="Whose program this is: shown as the author of what it posts.")
    prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to tell keys apart.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    prompt_tokens = models.PositiveBigIntegerField(default=0, editable=False, help_text="Tokens of stateless replies (/v1, /chat) asked with this key.")
    completion_tokens = models.PositiveBigIntegerField(default=0, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(secret):
        return hashlib.sha256(secret.encode()).hexdigest()
