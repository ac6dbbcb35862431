"""Prompt building, in one place: system prompt plus recent history within a budget of tokens."""

from django.conf import settings

from bots.providers.base import estimate_tokens

from .models import Message

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
    tokens = context_tokens - max_tokens - TEMPLATE_TOKENS - MESSAGE_TOKENS - count_tokens(bot.system_prompt)
    chars = settings.PROMPT_HISTORY_CHARS
    history = []
    for role, content in newest_first:
        cost = count_tokens(content) + MESSAGE_TOKENS
        if cost > tokens or len(content) > chars:
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
    return [{"role": "system", "content": bot.system_prompt}, *history]


def _tail(content, tokens, chars, count_tokens):
    """The longest end of content within tokens and chars."""
    if tokens <= 0 or chars <= 0:
        return ""
    tail = content[-chars:]
    while tail and count_tokens(tail) > tokens:
        tail = tail[max(1, len(tail) * (count_tokens(tail) - tokens) // count_tokens(tail)):]
    return tail


def build_prompt(bot, reply, *, context_tokens, max_tokens, count_tokens=estimate_tokens):
    """The prompt for a room's reply: what the room said before it (the reply itself left out)."""
    earlier = (
        Message.objects.filter(bot=bot.key, id__lt=reply.pk)
        .exclude(content="")
        .order_by("-id")
        .values_list("role", "content")
    )
    return fit(
        bot, earlier.iterator(chunk_size=50), context_tokens=context_tokens, max_tokens=max_tokens,
        count_tokens=count_tokens,
    )
