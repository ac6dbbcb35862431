"""A conversation sent by a client of the direct SSE path, checked before any token is paid for."""

import json

from django.conf import settings

from bots.registry import BOTS, get_bot
from chat.text import tidy

ROLES = ("user", "assistant")


class BadConversation(Exception):
    """The request cannot be answered; str() says what to fix, status is the HTTP code to send."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def parse(bot_key, messages):
    """Check a bot key and a decoded messages list; return (bot, messages) or raise BadConversation."""
    bot = get_bot(bot_key)
    if bot is None:
        raise BadConversation(f"Unknown bot {str(bot_key)[:40]!r}: use one of {', '.join(BOTS)}.")
    if not isinstance(messages, list) or not messages:
        raise BadConversation('"messages" must be a non-empty list of {"role", "content"} objects.')
    limit = settings.SSE_MAX_MESSAGES
    if len(messages) > limit:
        raise BadConversation(f"Too many messages: {len(messages)}; send at most the last {limit}.", 413)
    clean = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise BadConversation(f'messages[{index}] must be an object with exactly "role" and "content".')
        role, content = message["role"], message["content"]
        if isinstance(content, str):
            content = tidy(content)
        if role not in ROLES:
            raise BadConversation(f'messages[{index}].role must be "user" or "assistant", not {str(role)[:20]!r}.')
        if not isinstance(content, str) or not content.strip():
            raise BadConversation(f"messages[{index}].content must be non-empty text.")
        if len(content) > settings.MESSAGE_MAX_CHARS:
            raise BadConversation(
                f"messages[{index}].content has {len(content)} characters; the limit is {settings.MESSAGE_MAX_CHARS}.", 413
            )
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "user":
        raise BadConversation("The last message must be the user's: it is what the bot answers.")
    return bot, clean


def decode(text, where):
    """JSON text to Python, or BadConversation naming where it came from."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadConversation(f"{where} is not valid JSON.") from None


def from_query(params, query_length):
    """GET /chat?bot=<key>&messages=<json>."""
    if query_length > settings.SSE_MAX_QUERY:
        raise BadConversation(
            f"The query string has {query_length} characters (limit {settings.SSE_MAX_QUERY}): "
            'POST the same conversation as JSON to /chat instead.', 414
        )
    if "messages" not in params:
        raise BadConversation('Give "bot" and "messages" (a JSON list) in the query string.')
    return parse(params.get("bot"), decode(params["messages"], '"messages"'))


def from_body(body, content_type):
    """POST /chat with {"bot": key, "messages": [...]}."""
    if len(body) > settings.SSE_MAX_BODY:
        raise BadConversation(f"The body has {len(body)} bytes; the limit is {settings.SSE_MAX_BODY}.", 413)
    if content_type != "application/json":
        raise BadConversation('Send the conversation as JSON with "Content-Type: application/json".', 415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadConversation("The body is not UTF-8 text.") from None
    data = decode(text, "The body")
    if not isinstance(data, dict):
        raise BadConversation('The body must be a JSON object: {"bot": ..., "messages": [...]}.')
    return parse(data.get("bot"), data.get("messages"))
