"""Prompt building, in one place: system prompt plus recent history within a budget."""

from django.conf import settings

from .models import Message

# A conservative characters-per-token ratio, so the budget never overruns the model's context.
CHARS_PER_TOKEN = 3
# Room left for the chat template's own tokens (role markers and the like).
TEMPLATE_TOKENS = 64


def history_budget(bot, context_tokens, max_tokens):
    """Characters of history that fit beside the system prompt and the longest reply."""
    room = (context_tokens - max_tokens - TEMPLATE_TOKENS) * CHARS_PER_TOKEN - len(bot.system_prompt)
    return max(0, min(settings.PROMPT_HISTORY_CHARS, room))


def fit(bot, newest_first, *, context_tokens, max_tokens):
    """OpenAI-style messages: the system prompt, then as much history as fits, oldest dropped first.

    newest_first yields (role, content) pairs from the message just before the reply backwards.
    """
    budget = history_budget(bot, context_tokens, max_tokens)
    history = []
    for role, content in newest_first:
        if len(content) > budget:
            if not history:
                # The latest message alone is over budget: keep its end, the part nearest the reply.
                history.append({"role": role, "content": content[-budget:] if budget else ""})
            break
        history.append({"role": role, "content": content})
        budget -= len(content)
    history.reverse()
    # Chat templates expect a user turn first; an assistant turn cut loose at the top is dropped.
    while history and history[0]["role"] != Message.Role.USER:
        history.pop(0)
    return [{"role": "system", "content": bot.system_prompt}, *history]


def build_prompt(bot, reply, *, context_tokens, max_tokens):
    """The prompt for a room's reply: what the room said before it (the reply itself left out)."""
    earlier = (
        Message.objects.filter(bot=bot.key, id__lt=reply.pk)
        .exclude(content="")
        .order_by("-id")
        .values_list("role", "content")
    )
    return fit(bot, earlier.iterator(chunk_size=50), context_tokens=context_tokens, max_tokens=max_tokens)
