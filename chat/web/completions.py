"""OpenAI-compatible endpoints: `GET /v1/models` lists the bots, `POST /v1/chat/completions` answers
as one of them. Stateless like `/chat` (nothing saved); an API key is required and its tokens are
counted. Errors come in OpenAI's shape, so any OpenAI client raises its own exceptions for them.
"""

import dataclasses
import json
import secrets
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bots.registry import BOTS, get_bot
from chat.models import ApiKey
from chat.text import tidy
from chat.web import keys, limits
from chat.web.direct import EventStream, reply_pieces

ROLES = ("system", "user", "assistant")


class Refused(Exception):
    """A request OpenAI's way of saying no: status, message, type, and the parameter at fault."""

    def __init__(self, status, message, kind="invalid_request_error", param=None, code=None, retry_after=None):
        super().__init__(message)
        self.status, self.kind, self.param, self.code, self.retry_after = status, kind, param, code, retry_after

    def response(self):
        body = {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="parley"'
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def _key(request):
    try:
        return keys.bearer(request, required=True)
    except keys.Unauthorized as problem:
        raise Refused(401, str(problem), "invalid_request_error", code="invalid_api_key") from None


@require_GET
def models(request):
    """The bots, as models."""
    try:
        _key(request)
    except Refused as refused:
        return refused.response()
    data = [{"id": bot.key, "object": "model", "created": 0, "owned_by": "parley", "description": bot.description}
            for bot in BOTS.values()]
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt  # a key, not a cookie, says who is asking
@require_POST
async def chat_completions(request):
    """A chat completion from the bot named by `model`, its persona before the caller's messages."""
    try:
        key = await sync_to_async(_key)(request)
        ask = _parse(request)
        if refusal := await sync_to_async(limits.check_message)(request, ask.bot.key):
            raise Refused(429, refusal.message, "rate_limit_exceeded", code="rate_limit_exceeded", retry_after=refusal.retry_after)
    except Refused as refused:
        return refused.response()
    pieces = reply_pieces(ask.bot, ask.newest_first)
    if ask.stream:
        return EventStream(_chunks(ask, key, pieces))
    text, ended = [], None
    async for kind, value in pieces:
        if kind == "text":
            text.append(value)
        elif kind == "end":
            ended = value
    if ended.error:
        return Refused(502, str(ended.error), "upstream_error", code=ended.error.kind).response()
    usage = await _count(key, ended.usage)
    return JsonResponse({
        **_head(ask, "chat.completion"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)}, "finish_reason": "stop"}],
        "usage": usage,
    })


@dataclasses.dataclass
class Ask:
    bot: object
    newest_first: list
    stream: bool
    include_usage: bool
    id: str = dataclasses.field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(12)}")
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))


def _parse(request):
    """The request body as an Ask, or Refused(400) saying what to fix."""
    if request.content_type != "application/json":
        raise Refused(415, 'Send JSON with "Content-Type: application/json".')
    if len(request.body) > settings.SSE_MAX_BODY:
        raise Refused(413, f"The body has {len(request.body)} bytes; the limit is {settings.SSE_MAX_BODY}.")
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        raise Refused(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused(400, "The body must be a JSON object.")
    bot = get_bot(body.get("model"))
    if bot is None:
        raise Refused(400, f"Unknown model {str(body.get('model'))[:40]!r}: use one of {', '.join(BOTS)} (GET /v1/models).",
                      param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Refused(400, '"messages" must be a non-empty list of {"role", "content"} objects.', param="messages")
    if len(messages) > settings.SSE_MAX_MESSAGES:
        raise Refused(400, f"Too many messages: {len(messages)}; send at most the last {settings.SSE_MAX_MESSAGES}.", param="messages")
    system, turns = [], []
    for index, message in enumerate(messages):
        role, content = _message(index, message)
        (system if role == "system" else turns).append((role, content))
    if not turns or turns[-1][0] != "user":
        raise Refused(400, "The last message must be the user's: it is what the bot answers.", param="messages")
    if system:  # the caller's instructions follow the bot's persona, which comes first
        bot = dataclasses.replace(bot, system_prompt="\n\n".join([bot.system_prompt, *(text for _, text in system)]))
    stream, options = body.get("stream", False), body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise Refused(400, '"stream" must be true or false, "stream_options" an object.', param="stream")
    return Ask(bot, list(reversed(turns)), stream, options.get("include_usage") is True)


def _message(index, message):
    """One message as (role, text): content a string or a list of text parts."""
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise Refused(400, f'{where} must be an object with "role" (system, user or assistant) and "content".', param=where)
    content = message.get("content")
    if isinstance(content, list):
        if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content):
            raise Refused(400, f"{where}.content: only text parts are understood here.", param=where)
        content = "".join(part["text"] for part in content)
    if not isinstance(content, str) or not content.strip():
        raise Refused(400, f"{where}.content must be non-empty text.", param=where)
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise Refused(400, f"{where}.content has {len(content)} characters; the limit is {settings.MESSAGE_MAX_CHARS}.", param=where)
    return message["role"], tidy(content)


def _head(ask, kind):
    return {"id": ask.id, "object": kind, "created": ask.created, "model": ask.bot.key}


def _chunk(ask, delta, finish=None):
    body = {**_head(ask, "chat.completion.chunk"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _chunks(ask, key, pieces):
    """chat.completion.chunk events, then (if asked) the usage, then [DONE]."""
    yield _chunk(ask, {"role": "assistant", "content": ""})
    async for kind, value in pieces:
        if kind == "text":
            yield _chunk(ask, {"content": value})
        elif kind == "idle":
            yield ": keep-alive\n\n"
        elif value.error:
            # OpenAI's streams carry an error object mid-stream; its SDK raises it as an APIError.
            error = {"message": str(value.error), "type": "upstream_error", "param": None, "code": value.error.kind}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        else:
            yield _chunk(ask, {}, "stop")
            usage = await _count(key, value.usage)
            if ask.include_usage:
                yield f"data: {json.dumps({**_head(ask, 'chat.completion.chunk'), 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


async def _count(key, usage):
    """OpenAI's usage object, counted against the key."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    await sync_to_async(ApiKey.objects.count_usage)(key, usage)
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}
