"""A reply's life as named transitions of its row, each a conditional update that may lose a race.

A transition updates a row only while its status allows it (and, for the reply job, only at the
revision the job last wrote): that condition is what lets Stop, the sweep, Retry and the job race
safely from any process. Each returns the fresh row, or None when it lost the race, and takes the
room's next event number in the same transaction.
"""

from django.db import connections, models, transaction
from django.utils import timezone

from chat.models.events import take_numbers
from chat.models.signals import row_changed


class Transitions(models.QuerySet):
    """The named transitions of messages (mixed into MessageQuerySet)."""

    def claim(self, pk, model):
        """pending → streaming, for the job that will write it."""
        return self._transition(pk, [self.model.Status.PENDING], status=self.model.Status.STREAMING, model=model)

    def stop(self, pk):
        """pending or streaming → cancelled: someone pressed Stop (the job sees it in the row)."""
        return self._transition(pk, self.model.ACTIVE, status=self.model.Status.CANCELLED)

    def finish(self, pk, revision, *, status, content, error="", usage=None):
        """streaming → complete or failed, with the whole text: the job's last write."""
        fields = {"status": status, "content": content, "error": error}
        if usage is not None:
            fields.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        return self._transition(pk, [self.model.Status.STREAMING], revision=revision, **fields)

    def fail(self, pk, error, *, revision=None):
        """pending or streaming → failed, keeping the text: the job broke, or never could start."""
        return self._transition(pk, self.model.ACTIVE, revision=revision, status=self.model.Status.FAILED, error=error)

    def interrupt(self, pk, *, revision=None, content=None, untouched_since=None):
        """pending or streaming → interrupted: its server shut down (with the text it had), or died (the sweep)."""
        fields = {} if content is None else {"content": content}
        return self._transition(
            pk, self.model.ACTIVE, revision=revision, untouched_since=untouched_since,
            status=self.model.Status.INTERRUPTED, error=self.model.INTERRUPTED_ERROR, **fields,
        )

    def retry(self, pk):
        """failed, cancelled or interrupted → pending again, emptied."""
        return self._transition(
            pk, self.model.RETRYABLE, status=self.model.Status.PENDING, content="", error="",
            prompt_tokens=None, completion_tokens=None,
        )

    def remove(self, pk, by):
        """A moderator takes a message off every page (the row stays, marked): the fresh row, or None
        if it was already removed. A reply still being written is cancelled in the same write."""
        now = timezone.now()
        Status = self.model.Status
        status = models.Case(
            models.When(status__in=self.model.ACTIVE, then=models.Value(Status.CANCELLED)), default=models.F("status")
        )
        with transaction.atomic(using=self.db):
            # It leaves the index with the page: a trigger, in this write.
            if not self.filter(pk=pk, removed_at__isnull=True).update(
                removed_at=now, removed_by=by[:150], status=status, revision=models.F("revision") + 1, updated_at=now,
                seq=self._number(pk),
            ):
                return None
        return self._changed(pk)

    def _transition(self, pk, from_statuses, *, revision=None, untouched_since=None, **fields):
        rows = self.filter(pk=pk, status__in=from_statuses)
        if revision is not None:
            rows = rows.filter(revision=revision)
        if untouched_since is not None:
            rows = rows.filter(updated_at__lt=untouched_since)
        fields.setdefault("updated_at", timezone.now())
        with transaction.atomic(using=self.db):
            # A transition that loses its race has taken a number no row carries: a gap, never a repeat.
            # Finished, failed, stopped, interrupted: into the index; retried: out until it finishes
            # again (a trigger, in this write).
            if not rows.update(revision=models.F("revision") + 1, seq=self._number(pk), **fields):
                return None
        return self._changed(pk)

    def _changed(self, pk):
        """The fresh row after a transition, told to the broadcaster."""
        instance = self.with_asker().get(pk=pk)  # the partial names a reply's asker
        row_changed.send(sender=self.model, instance=instance)
        return instance

    def _number(self, pk):
        """The next event number of message pk's room (0 if there is no such message)."""
        room = self.filter(pk=pk).values_list("room", flat=True).first()
        return take_numbers(connections[self.db], [room])[0] if room else 0
