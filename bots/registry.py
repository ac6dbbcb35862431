"""The one registry of bot personalities: a new bot is one new entry in BOTS."""

from dataclasses import dataclass

from django.http import Http404


@dataclass(frozen=True)
class Bot:
    """A personality: its key (the room's name in URLs), display name and system prompt."""

    key: str
    name: str
    description: str
    system_prompt: str

    @property
    def group(self):
        """The Channels group every page of this bot's room listens on."""
        return f"{self.key}.messages"


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


def get_bot(key):
    """Return the bot registered under key, or None: keys from requests are looked up, never imported."""
    if not isinstance(key, str):
        return None
    return BOTS.get(key)


def get_bot_or_404(key):
    """The bot registered under key, or Http404 saying there is none: for views, like get_object_or_404."""
    bot = get_bot(key)
    if bot is None:
        raise Http404(f"There is no bot called {str(key)[:40]!r}.")
    return bot
