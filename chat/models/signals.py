"""What the rows say happened to them, for the broadcaster: sent after a change that save() does not report."""

from django.dispatch import Signal

#: Sent after a streaming reply's row grew: sender=Message, message_id, room, offset, text.
content_appended = Signal()
#: Sent after a conditional update changed a row without save(): sender=Message, instance.
row_changed = Signal()
#: Sent after a reply's vote counts changed: sender=Message, instance.
votes_changed = Signal()
