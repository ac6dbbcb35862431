"""A conversation a program sends (/chat and /v1), checked before any token is paid for.

One set of rules, each error sentence written once; the two endpoints differ only in their
dialect: /chat takes plain {"role", "content"} objects of people and bots, /v1 OpenAI's message
objects (a system role, content as text parts, other fields ignored).
"""

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from chat.text import tidy


class BadConversation(Exception):
    """The request cannot be answered; str() says what to fix, status is the HTTP code, param the field at fault."""

    def __init__(self, message, status=400, param=None):
        super().__init__(message)
        self.status, self.param = status, param


@dataclass(frozen=True)
class Dialect:
    """What one endpoint accepts as a message."""

    roles: tuple
    exact_fields: bool  # nothing but "role" and "content"
    text_parts: bool  # content may be a list of {"type": "text", "text"} parts


DIRECT = Dialect(roles=("user", "assistant"), exact_fields=True, text_parts=False)
OPENAI = Dialect(roles=("system", "user", "assistant"), exact_fields=False, text_parts=True)


def messages(raw, dialect):
    """A decoded messages list as [(role, text), ...] in order, or BadConversation."""
    if not isinstance(raw, list) or not raw:
        raise BadConversation('"messages" must be a non-empty list of {"role", "content"} objects.', param="messages")
    limit = settings.SSE_MAX_MESSAGES
    if len(raw) > limit:
        raise BadConversation(f"Too many messages: {len(raw)}; send at most the last {limit}.", 413, "messages")
    checked = [_message(index, message, dialect) for index, message in enumerate(raw)]
    turns = [role for role, _ in checked if role != "system"]  # a system message may stand anywhere
    if not turns or turns[-1] != "user":
        raise BadConversation("The last message must be the user's: it is what the bot answers.", param="messages")
    return checked


def _message(index, message, dialect):
    where = f"messages[{index}]"
    fields = set(message) if isinstance(message, dict) else set()
    if not {"role", "content"} <= fields or (dialect.exact_fields and fields != {"role", "content"}):
        exactly = "exactly " if dialect.exact_fields else ""
        raise BadConversation(f'{where} must be an object with {exactly}"role" and "content".', param=where)
    role, content = message["role"], message["content"]
    if role not in dialect.roles:
        allowed = " or ".join(", ".join(f'"{name}"' for name in dialect.roles).rsplit(", ", 1))
        raise BadConversation(f"{where}.role must be {allowed}, not {str(role)[:20]!r}.", param=where)
    if dialect.text_parts and isinstance(content, list):
        if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content):
            raise BadConversation(f"{where}.content: only text parts are understood here.", param=where)
        content = "".join(part["text"] for part in content)
    if isinstance(content, str):
        content = tidy(content)
    if not isinstance(content, str) or not content.strip():
        raise BadConversation(f"{where}.content must be non-empty text.", param=where)
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise BadConversation(
            f"{where}.content has {len(content)} characters; the limit is {settings.MESSAGE_MAX_CHARS}.", 413, where
        )
    return role, content


def decode(text, where):
    """JSON text to Python, or BadConversation naming where it came from."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadConversation(f"{where} is not valid JSON.") from None


def json_body(request, shape):
    """A JSON object body, within SSE_MAX_BODY bytes; shape says what it should look like, for the error."""
    try:
        body = request.body
    except RequestDataTooBig:  # over Django's own cap (DATA_UPLOAD_MAX_MEMORY_SIZE): not read at all
        raise BadConversation(f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; the limit is {settings.SSE_MAX_BODY}.", 413) from None
    if len(body) > settings.SSE_MAX_BODY:
        raise BadConversation(f"The body has {len(body)} bytes; the limit is {settings.SSE_MAX_BODY}.", 413)
    if request.content_type != "application/json":
        raise BadConversation('Send JSON with "Content-Type: application/json".', 415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadConversation("The body is not UTF-8 text.") from None
    data = decode(text, "The body")
    if not isinstance(data, dict):
        raise BadConversation(f"The body must be a JSON object: {shape}.")
    return data


def from_query(params, query_length):
    """GET /chat?bot=<key>&messages=<json>: (bot key, the messages decoded, not yet checked)."""
    if query_length > settings.SSE_MAX_QUERY:
        raise BadConversation(
            f"The query string has {query_length} characters (limit {settings.SSE_MAX_QUERY}): "
            'POST the same conversation as JSON to /chat instead.', 414
        )
    if "messages" not in params:
        raise BadConversation('Give "bot" and "messages" (a JSON list) in the query string.')
    return params.get("bot"), decode(params["messages"], '"messages"')
