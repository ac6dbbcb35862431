"""OpenAI-compatible endpoints: `GET /v1/models` lists the bots, `POST /v1/chat/completions` answers
as one of them. Stateless like `/chat` (nothing saved); an API key is required and its tokens are
counted. Errors come in OpenAI's shape, so any OpenAI client raises its own exceptions for them.
"""

import dataclasses
import secrets
import time

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bots import registry
from bots.registry import get_bot
from chat import limits
from chat.api import conversation, keys, sse
from chat.api.conversation import BadConversation
from chat.models import ApiKey
from chat.replies.stateless import reply_pieces

DONE = "[DONE]"


class Refused(Exception):
    """A request OpenAI's way of saying no: status, message, type, and the parameter at fault."""

    def __init__(self, status, message, kind="invalid_request_error", param=None, code=None, retry_after=None):
        super().__init__(message)
        self.status, self.kind, self.param, self.code, self.retry_after = status, kind, param, code, retry_after

    def response(self):
        body = {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = keys.CHALLENGE
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def _key(request):
    try:
        return keys.bearer(request, required=True)
    except keys.Unauthorized as problem:
        raise Refused(401, str(problem), code="invalid_api_key") from None


@require_GET
def models(request):
    """The bots, as models."""
    try:
        _key(request)
    except Refused as refused:
        return refused.response()
    data = [{"id": bot.key, "object": "model", "created": 0, "owned_by": "parley", "description": bot.description}
            for bot in registry.bots()]
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt  # a key, not a cookie, says who is asking
@require_POST
async def chat_completions(request):
    """A chat completion from the bot named by `model`, its persona before the caller's messages."""
    try:
        key = await sync_to_async(_key)(request)
        ask = _parse(request)
        if refusal := await sync_to_async(limits.check_stateless)(request, ask.bot.key):
            raise Refused(429, refusal.message, "rate_limit_exceeded", code="rate_limit_exceeded", retry_after=refusal.retry_after)
    except Refused as refused:
        return refused.response()
    pieces = reply_pieces(ask.bot, ask.newest_first)
    if ask.stream:
        return sse.EventStream(_chunks(ask, key, pieces))
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
    """The request body as an Ask, or Refused (400 for anything wrong in it, as OpenAI answers)."""
    try:
        body = conversation.json_body(request, '{"model": ..., "messages": [...]}')
        bot = get_bot(body.get("model"))
        if bot is None:
            raise BadConversation(
                f"Unknown model {str(body.get('model'))[:40]!r}: use one of {', '.join(bot.key for bot in registry.bots())} (GET /v1/models).", param="model"
            )
        turns = conversation.messages(body.get("messages"), conversation.OPENAI)
    except BadConversation as problem:
        # A body that is not JSON at all (415) or too large (413) keeps its status; any other fault is a 400.
        status = problem.status if problem.status in (413, 415) and problem.param is None else 400
        raise Refused(status, str(problem), param=problem.param, code="model_not_found" if problem.param == "model" else None) from None
    system = [text for role, text in turns if role == "system"]
    if system:  # the caller's instructions follow the bot's persona, which comes first
        bot = dataclasses.replace(bot, persona="\n\n".join([bot.persona, *system]))
    stream, options = body.get("stream", False), body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise Refused(400, '"stream" must be true or false, "stream_options" an object.', param="stream")
    newest_first = [turn for turn in reversed(turns) if turn[0] != "system"]
    return Ask(bot, newest_first, stream, options.get("include_usage") is True)


def _head(ask, kind):
    return {"id": ask.id, "object": kind, "created": ask.created, "model": ask.bot.key}


def _chunk(ask, delta, finish=None):
    return sse.event({**_head(ask, "chat.completion.chunk"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


async def _chunks(ask, key, pieces):
    """chat.completion.chunk events, then (if asked) the usage, then [DONE]."""
    yield _chunk(ask, {"role": "assistant", "content": ""})
    async for kind, value in pieces:
        if kind == "text":
            yield _chunk(ask, {"content": value})
        elif kind == "idle":
            yield sse.KEEP_ALIVE
        elif value.error:
            # OpenAI's streams carry an error object mid-stream; its SDK raises it as an APIError.
            yield sse.event({"error": {"message": str(value.error), "type": "upstream_error", "param": None, "code": value.error.kind}})
        else:
            yield _chunk(ask, {}, "stop")
            usage = await _count(key, value.usage)
            if ask.include_usage:
                yield sse.event({**_head(ask, "chat.completion.chunk"), "choices": [], "usage": usage})
    yield sse.event(DONE)


async def _count(key, usage):
    """OpenAI's usage object, counted against the key."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    await sync_to_async(ApiKey.objects.count_usage)(key, usage)
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}
