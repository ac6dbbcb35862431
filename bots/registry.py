"""The one registry of bot personalities and rooms: a new bot is one entry in BOTS, a new room one in ROOMS."""

import re
from dataclasses import dataclass

from django.http import Http404


@dataclass(frozen=True)
class Bot:
    """A personality: its key (how a message mentions it: @PirateBot), display name and system prompt."""

    key: str
    name: str
    description: str
    system_prompt: str


BOTS = {
    bot.key: bot
    for bot in [
        Bot(
            key="ChatBot",
            name="Default",
            description="A helpful assistant that asks when it needs more to go on.",
            system_prompt=(
                "You are a helpful assistant that is chatting with a user. You can ask the user to "
                "provide more information if it helps you determine the correct response."
            ),
        ),
        Bot(
            key="BelleBot",
            name="Southern Belle",
            description="Answers with the charm and mannerisms of a Southern Belle.",
            system_prompt=(
                "You are a Southern Belle. Speak with the charm and mannerisms of a Southern Belle in "
                "all your responses, using appropriate vocabulary and expressions."
            ),
        ),
        Bot(
            key="PirateBot",
            name="Pirate",
            description="Talks like a pirate, slang and all.",
            system_prompt=(
                "You are a pirate. Speak like a pirate in all your responses, using pirate slang and "
                "expressions."
            ),
        ),
    ]
}


@dataclass(frozen=True)
class Room:
    """A live room: its key (its name in URLs), title, and its own bot, which answers any message that mentions none."""

    key: str
    title: str
    description: str
    bot: Bot | None = None

    @property
    def group(self):
        """The Channels group every page of the room listens on."""
        return f"{self.key}.messages"

    def answerers(self, content):
        """The bots that answer a message, in order: those it mentions, else the room's own bot, if any."""
        return mentioned(content) or ([self.bot] if self.bot else [])


# A mention is @ and a bot key, not inside a word or an e-mail address ("me@PirateBot.com" calls no one).
MENTION = re.compile(r"(?<![\w@.])@(\w+)(?![\w@]|\.\w)")


def mentioned(content):
    """The bots a message mentions (@Key, any case), each once, in the order first mentioned."""
    found = []
    for key in MENTION.findall(content):
        bot = _BOTS_BY_LOWER_KEY.get(key.lower())
        if bot is not None and bot not in found:
            found.append(bot)
    return found


_BOTS_BY_LOWER_KEY = {key.lower(): bot for key, bot in BOTS.items()}

# Each bot has a room of its own under its key; the Lounge has none, and bots come when mentioned.
ROOMS = {
    room.key: room
    for room in [
        *(Room(key=bot.key, title=bot.name, description=bot.description, bot=bot) for bot in BOTS.values()),
        Room(
            key="Lounge",
            title="The Lounge",
            description="People talk with each other; a bot answers only when someone mentions it, like @PirateBot.",
        ),
    ]
}


def get_room(key):
    """Return the room registered under key, or None."""
    return _entry(ROOMS, key)


def get_room_or_404(key):
    """The room registered under key, or Http404 saying there is none."""
    return _entry_or_404(ROOMS, key, "room")


def get_bot(key):
    """Return the bot registered under key, or None: keys from requests are looked up, never imported."""
    return _entry(BOTS, key)


def get_bot_or_404(key):
    """The bot registered under key, or Http404 saying there is none: for views, like get_object_or_404."""
    return _entry_or_404(BOTS, key, "bot")


def _entry(registry, key):
    return registry.get(key) if isinstance(key, str) else None


def _entry_or_404(registry, key, kind):
    entry = _entry(registry, key)
    if entry is None:
        raise Http404(f"There is no {kind} called {str(key)[:40]!r}.")
    return entry
