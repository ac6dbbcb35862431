"""Prompt building, in one place: system prompt plus recent history within a budget of tokens."""

from django.conf import settings

from bots.providers.base import estimate_tokens
from bots.registry import mentioned
from chat.models import Message
from chat.replies.speakers import labelled

# The chat template's tokens around the whole prompt (a start token, the reply's opening marker).
TEMPLATE_TOKENS = 16
# Its tokens around each message (ChatML spends 5: start, role, newline, end, newline).
MESSAGE_TOKENS = 8


def fit(bot, newest_first, *, context_tokens, max_tokens, count_tokens=estimate_tokens):
    """OpenAI-style messages: the system prompt, then as much history as fits, oldest dropped first.

    newest_first yields (role, content) pairs from the newest message backwards. The prompt and the
    longest reply fit the context in count_tokens' tokens (the model's own count where the
    provider has one), and history stays within PROMPT_HISTORY_CHARS, which bounds what a
    paid model is sent.
    """
    tokens = context_tokens - max_tokens - TEMPLATE_TOKENS - MESSAGE_TOKENS - count_tokens(bot.persona)
    chars = settings.PROMPT_HISTORY_CHARS
    history = []
    for role, content in newest_first:
        fits = len(content) <= chars and (cost := count_tokens(content) + MESSAGE_TOKENS) <= tokens
        if not fits:
            if not history:
                # The newest message alone is over budget: keep its end, the part nearest the reply.
                history.append({"role": role, "content": _tail(content, tokens - MESSAGE_TOKENS, chars, count_tokens)})
            break
        history.append({"role": role, "content": content})
        tokens -= cost
        chars -= len(content)
    history.reverse()
    # Chat templates expect a user turn first; an assistant turn cut loose at the top is dropped.
    while history and history[0]["role"] != Message.Role.USER:
        history.pop(0)
    return [{"role": "system", "content": bot.persona}, *history]


def _tail(content, tokens, chars, count_tokens):
    """The longest end of content within tokens and chars (a binary search over where it starts)."""
    shortest, longest = 0, min(len(content), max(chars, 0))  # lengths of tail known to fit / to try
    while shortest < longest:
        length = (shortest + longest + 1) // 2
        if count_tokens(content[-length:]) <= tokens:
            shortest = length
        else:
            longest = length - 1
    return content[len(content) - shortest:]


def recent_history(room_key, before_pk, bot):
    """The room's messages before before_pk as bot sees them, and who else speaks there.

    The history is newest first, as (role, content): the bot's own replies as the assistant's,
    everyone else's as users' lines led by who said them; no more than a prompt can take in
    characters (and one more, which fit may cut to its end). The speakers are the other names
    those lines are led by and the other bots they call, most recent first.
    """
    earlier = (
        Message.objects.shown()
        .filter(room=room_key, id__lt=before_pk)
        .exclude(content="")
        .order_by("-id")
        .only("role", "bot", "author", "content")
    )
    history, speakers, chars = [], {}, settings.PROMPT_HISTORY_CHARS
    for message in earlier.iterator(chunk_size=50):
        if message.role == Message.Role.ASSISTANT and message.bot == bot.key:
            history.append((Message.Role.ASSISTANT.value, message.content))
        else:
            name = message.author_name or message.bot
            history.append((Message.Role.USER.value, labelled(name, message.content)))
            speakers.setdefault(name, None)
            if message.role == Message.Role.USER:
                # Bots called and yet to answer are the likeliest lines a model writes for them.
                speakers.update(dict.fromkeys(called.key for called in mentioned(message.content)))
        chars -= len(history[-1][1])
        if chars < 0:
            break
    speakers.pop(bot.key, None)
    return history, list(speakers)
