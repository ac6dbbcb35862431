"""Catch me up over SSE: the room page's button and POST /api/rooms/<room>/catch-up both stream here,
as /chat does (`text` events, then `done`), to the one client that asked; nothing is saved."""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bots.providers import ProviderError
from chat import access, limits, unread
from chat.api import sse
from chat.api.direct import reply_events
from chat.api.errors import error
from chat.models import Message
from chat.replies import summary

@require_POST
async def from_page(request, room):
    """POST /rooms/<room>/catch-up, the room page's button (CSRF-protected, the page's session):
    form field after, the position the page opened at; a summary of what came after it."""
    found = await sync_to_async(lambda: access.room_for(access.account(request), room))()
    after = request.POST.get("after", "")
    if not (after.isascii() and after.isdigit() and len(after) <= 18):
        return error("Send after: the room's event number to catch up from, a whole number.", 400)
    return await catch_up(request, found, int(after))


async def catch_up(request, room, after=None):
    """The summary of room's messages past event after (None: the reader's own position, which then
    moves on to what was summarized) as an event stream; or a JSON refusal (no bot, over budget)."""
    bot = summary.summarizer(room)
    if bot is None:
        return error(f"No bot can summarize here: set CATCH_UP_BOT to a bot's key (it is {settings.CATCH_UP_BOT!r}).", 503)
    now, lines, total = await sync_to_async(_unread)(request, room, after)
    if total:
        refusal = await sync_to_async(limits.check_stateless)(request, bot.key)
        if refusal:
            return error(refusal.message, 429, Retry_After=refusal.retry_after)
    return sse.EventStream(_events(request, room, bot, lines, total, now if after is None else None))


def _unread(request, room, after):
    """(the room's latest event number, its unread lines newest first, how many there are)."""
    if after is None:
        after = (unread.positions(request) or {}).get(room.key, 0)
    now = Message.objects.last_event(room.key)  # read first: what is summarized is no older than this
    lines, total = summary.unread(room.key, after)
    return now, lines, total


async def _events(request, room, bot, lines, total, mark):
    """The stream: the summary's text (after a note of what was left out), then done; the reader's
    position moves to mark (when set) once the summary ended well."""
    if not total:
        yield sse.event({"text": _("Nothing is new here since then.")}, name="text")
        yield sse.event({}, name="done")
        return
    try:
        bot, kept, left = await summary.fitted(bot, lines, total)
    except ProviderError as exc:
        yield sse.event({"error": str(exc)}, name="error")
        yield sse.event({}, name="done")
        return
    if left:
        yield sse.event({"text": summary.left_out(left) + "\n\n"}, name="text")
    failed = False
    async for part in reply_events(bot, list(reversed(kept))):
        failed = failed or part.startswith("event: error")
        yield part
    if mark is not None and not failed:
        await sync_to_async(unread.mark)(request, room.key, mark)
