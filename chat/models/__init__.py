"""Parley's rows: messages (with the reply's transitions, turns and growth), votes, mutes, read positions, rooms'
event counters and API keys, one module each."""

from chat.models.events import RoomClock, take_numbers
from chat.models.feedback import Feedback
from chat.models.keys import ApiKey
from chat.models.message import Message, MessageQuerySet
from chat.models.mutes import Mute
from chat.models.reads import ReadPosition
from chat.models.signals import content_appended, row_changed, votes_changed
from chat.models.turns import ROOM_BUSY

__all__ = [
    "ROOM_BUSY", "ApiKey", "Feedback", "Message", "MessageQuerySet", "Mute", "ReadPosition", "RoomClock", "content_appended",
    "row_changed", "take_numbers", "votes_changed",
]
