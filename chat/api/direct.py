"""The direct SSE path: `/chat` streams a reply to a conversation the client sends; no database."""

from asgiref.sync import sync_to_async
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from bots import registry
from bots.registry import get_bot
from chat import limits, wording
from chat.api import conversation, keys, sse
from chat.api.conversation import BadConversation
from chat.api.errors import error
from chat.replies.stateless import reply_pieces


@csrf_exempt  # JSON only (below): another site's page cannot send that without a CORS preflight, never granted
@require_http_methods(["GET", "POST"])
async def chat(request):
    """GET /chat?bot=&messages= or POST /chat with JSON: `text` events, then `done`. An API key, if
    sent, must be valid, and the requests count against its limit instead of the client's."""
    try:
        await sync_to_async(keys.bearer)(request, required=False)
    except keys.Unauthorized as problem:
        return keys.unauthorized(problem)
    try:
        if request.method == "GET":
            bot_key, raw = conversation.from_query(request.GET, len(request.META.get("QUERY_STRING", "")))
        else:
            body = conversation.json_body(request, '{"bot": ..., "messages": [...]}')
            bot_key, raw = body.get("bot"), body.get("messages")
        bot = get_bot(bot_key)
        if bot is None:
            raise BadConversation(f"Unknown bot {str(bot_key)[:40]!r}: use one of {', '.join(bot.key for bot in registry.bots())}.")
        turns = conversation.messages(raw, conversation.DIRECT)
    except BadConversation as problem:
        return error(str(problem), problem.status)
    refusal = await sync_to_async(limits.check_stateless)(request, bot.key)
    if refusal:
        return error(refusal.message, 429, Retry_After=refusal.retry_after)
    return sse.EventStream(reply_events(bot, turns, translation.get_language()))


async def reply_events(bot, turns, language=None):
    """The event stream; closing it (the client went away) closes the upstream at once. Its error
    sentence is in the asker's language (the stream outlives the view that chose it)."""
    async for kind, value in reply_pieces(bot, list(reversed(turns))):
        if kind == "text":
            yield sse.event({"text": value}, name="text")
        elif kind == "idle":
            yield sse.KEEP_ALIVE
        elif value.error:
            with translation.override(language):
                said = wording.translated(str(value.error))
            yield sse.event({"error": said}, name="error")
    yield sse.event({}, name="done")
