"""Catch me up: a bot's summary of the messages a person has not read, with who said what, fitted
to the model's context (the newest kept), streamed to that person alone and saved nowhere."""

import dataclasses

from django.conf import settings
from django.utils.translation import ngettext

from bots import registry
from chat import services
from chat.models import Message
from chat.replies.prompt import fit
from chat.replies.reading import configured_provider
from chat.replies.speakers import labelled

PROMPT = (
    "You catch a person up on a chat room's messages they missed. Each message you are given starts "
    "with the name of who wrote it, oldest first. Summarize them briefly, saying who said what; "
    "do not answer them."
)


def left_out(count):
    """The note that starts a summary that could not fit every unread message, in the reader's language."""
    return ngettext(
        "%(count)d earlier unread message did not fit and is left out of this summary.",
        "%(count)d earlier unread messages did not fit and are left out of this summary.",
        count,
    ) % {"count": count}


def summarizer(room):
    """The bot that summarizes room: its own, else CATCH_UP_BOT (None when that is no bot), with the summary's instructions."""
    bot = room.bot or registry.get_bot(settings.CATCH_UP_BOT)
    return dataclasses.replace(bot, persona=PROMPT) if bot is not None else None


def unread(room_key, after):
    """The room's shown messages with text numbered past event after, newest first (at most
    CATCH_UP_MAX_MESSAGES of them), as (name, content) lines; and how many there are in all."""
    rows = Message.objects.shown().filter(room=room_key, number__gt=after).exclude(content="")
    most = settings.CATCH_UP_MAX_MESSAGES
    newest = list(rows.order_by("-id").only("role", "bot", "author", "content")[:most])
    total = len(newest) if len(newest) < most else rows.count()
    return [(_name(message), message.content) for message in newest], total


def _name(message):
    if message.role == Message.Role.USER:
        return message.author_name
    bot = registry.get_bot(message.bot)
    return bot.name if bot is not None else message.bot


async def fitted(bot, lines, total):
    """(the bot with its instructions, the lines it reads as user turns newest first, how many were
    left out): the newest that fit the model's context beside the instructions and the reply."""
    provider = configured_provider(bot)  # ProviderError when the model is not configured
    newest_first = [(Message.Role.USER.value, labelled(name, content)) for name, content in lines]
    # Fitted with the longest note it may carry: the final, shorter instructions leave as much room.
    noted = dataclasses.replace(bot, persona=f"{bot.persona} {left_out(total)}")
    prompt = await services.run(
        "prompts", fit, noted, newest_first, context_tokens=provider.context_tokens,
        max_tokens=bot.max_tokens or settings.REPLY_MAX_TOKENS, count_tokens=provider.count_tokens,
    )
    kept = [(turn["role"], turn["content"]) for turn in reversed(prompt[1:])]
    left = total - len(kept)
    if left:
        bot = dataclasses.replace(bot, persona=f"{bot.persona} {left_out(left)}")
    return bot, kept, left
