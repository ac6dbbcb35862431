"""Votes: one person's thumbs up or down on a finished reply, and the reply's counts kept exact."""

from django.db import connections, models, transaction
from django.utils import timezone

from chat.models.events import take_numbers
from chat.models.message import Message
from chat.models.signals import votes_changed


class FeedbackQuerySet(models.QuerySet):
    def cast(self, reply, voter, value):
        """Record voter's vote on a finished reply: "up", "down" or "none" (take it back); returns the
        reply with its counts, which are recounted in the same transaction so they never drift."""
        wanted = None if value == "none" else Feedback.Value[value.upper()]
        with transaction.atomic(using=self.db):
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
    voter = models.CharField(max_length=64, help_text="The voter, as a sender tag (guest:…, user:<id>).")
    value = models.SmallIntegerField(choices=Value.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FeedbackQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "voter"], name="feedback_one_vote_per_person")]
        verbose_name_plural = "feedback"

    def __str__(self):
        return f"{self.get_value_display()} on #{self.message_id}"
