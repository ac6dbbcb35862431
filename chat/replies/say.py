"""A person's (or a program's) message into a room, and the replies it calls for, queued in order."""

from django.db import transaction

from chat.models import Message
from chat.replies import workers


def say(room, content, sender):
    """Save sender's message and a pending reply per bot that answers it (those it mentions, else
    the room's own); once that commits, this process's worker for the room answers them in turn.
    Returns the message and its replies."""
    answerers = room.answerers(content)
    with transaction.atomic():
        # Each create holds the room's lock to the end of this transaction: a post's rows get
        # consecutive ids, whichever process posts at the same time.
        said = Message.objects.create(
            room=room.key, role=Message.Role.USER, content=content, author=sender.name, sender=sender.tag
        )
        # Queued in this order: the room's worker answers pending replies oldest first.
        replies = [
            Message.objects.create(
                room=room.key, bot=bot.key, role=Message.Role.ASSISTANT, status=Message.Status.PENDING, reply_to=said
            )
            for bot in answerers
        ]
        if replies:
            transaction.on_commit(lambda: workers.request_reply(room.key))
    return said, replies
