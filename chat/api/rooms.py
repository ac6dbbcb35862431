"""The rooms API for programs: JSON under /api/, schemas and validation by django-ninja, its
OpenAPI document served at /api/docs. Every call carries an API key (`Authorization: Bearer`);
what a key posts shows on the room's pages under its name, marked as coming through the API.
"""

from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from bots import registry
from chat import access, identity, limits, search, steering
from chat.api import events, keys, summaries
from chat.api.errors import error
from chat.models import Message
from chat.names import check_name
from chat.replies import workers
from chat.replies.say import say
from chat.text import tidy


class KeyAuth(HttpBearer):
    """`Authorization: Bearer <key>` as every endpoint for programs checks it (chat.api.keys); its
    base class puts the scheme in the OpenAPI document."""

    def __call__(self, request):
        return keys.bearer(request, required=True)

    def authenticate(self, request, token):  # never reached: __call__ reads the header itself
        raise NotImplementedError


api = NinjaAPI(
    title="Parley rooms API",
    version="1",
    description="Rooms, their history, posting into them, Stop and Retry, and their events over SSE with exact resume.",
    auth=KeyAuth(),
    urls_namespace="api",
    docs_url="/docs",
)


@api.exception_handler(keys.Unauthorized)
def unauthorized(request, exc):
    return keys.unauthorized(exc)


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    return keys.unauthorized(keys.Unauthorized(keys.MISSING))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_away(request, exc):
    raise exc  # to the 503 every endpoint gives when the database is away (project/unavailable.py)


@api.exception_handler(ValidationError)
def invalid(request, exc):
    # loc starts with where the value came from (body, query, path): the field's own path follows.
    where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in exc.errors)
    return error(f"The request is not valid: {where}", 422)


@api.exception_handler(RequestDataTooBig)
def too_big(request, exc):
    return error(f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.", 413)


@api.exception_handler(Http404)
def not_found(request, exc):
    return error(str(exc) or "Not found.", 404)


@api.exception_handler(HttpError)
def refused(request, exc):
    return error(str(exc), exc.status_code)


class RoomOut(Schema):
    key: str
    title: str
    description: str
    bot: str | None = Field(description="The room's own bot, which answers messages that mention none.")
    bots: list[str] = Field(description="Bots a message can call in with @Key.")


class MessageOut(Schema):
    id: int
    room: str
    role: str
    author: str | None = Field(description="A person's display name (user messages).")
    bot: str | None = Field(description="The bot writing it (replies).")
    via_api: bool = Field(description="Posted through this API, under a key's name.")
    status: str
    content: str
    error: str
    created: datetime
    updated: datetime
    revision: int
    reply_to: int | None
    up_votes: int = Field(description="Thumbs up on a finished reply.")
    down_votes: int = Field(description="Thumbs down on a finished reply.")

    of = staticmethod(events.message_json)


class PostIn(Schema):
    content: str = Field(min_length=1, description="The message; @BotKey calls a bot.")
    author: str | None = Field(None, description="Who the program speaks for; the key's name if left out.")


class PostOut(Schema):
    id: int
    replies: list[int] = Field(description="The replies it started, in the order they will be written.")


class HistoryQuery(Schema):
    before: int | None = Field(None, ge=1, description="Only messages older than this id.")
    limit: int = Field(50, ge=1, le=200)


@api.get("/rooms", response=list[RoomOut], summary="The rooms, with their bots")
def rooms(request):
    return [
        {"key": room.key, "title": room.title, "description": room.topic,
         "bot": room.bot.key if room.bot else None, "bots": [bot.key for bot in registry.bots()]}
        for room in access.rooms_for(access.account(request))
    ]


@api.get("/rooms/{room}/messages", response=list[MessageOut], summary="A page of a room's history, newest first")
def history(request, room: str, page: Query[HistoryQuery]):
    found = access.room_for(access.account(request), room)
    messages = Message.objects.shown().filter(room=found.key)
    if page.before:
        messages = messages.filter(id__lt=page.before)
    return [MessageOut.of(m) for m in messages.order_by("-id")[: page.limit]]


@api.post("/rooms/{room}/messages", response={202: PostOut}, summary="Post into a room as the key's integration")
def post(request, room: str, body: PostIn):
    found = access.room_for(access.account(request), room)
    content = tidy(body.content).strip()
    if not content:
        raise HttpError(400, "Write a message: content is empty.")
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise HttpError(413, f"Messages are limited to {settings.MESSAGE_MAX_CHARS} characters; this one has {len(content)}.")
    name = None
    if body.author is not None:
        name, problem = check_name(body.author)
        if problem:
            raise HttpError(400, f"author: {problem}")
    sender = identity.of_key(request.auth, name)
    if muted := steering.muted(request, sender, found):
        raise HttpError(403, muted)
    if refusal := limits.check_message(request, found.key):
        return error(refusal.message, 429, Retry_After=refusal.retry_after)
    said, replies = say(found, content, sender)
    return Status(202, {"id": said.pk, "replies": [reply.pk for reply in replies]})


def _reply_to_steer(request, room, message_id):
    """The room's reply message_id, if this key may Stop or Retry it (the key that asked, or a moderator)."""
    found = access.room_for(access.account(request), room)
    reply = get_object_or_404(
        Message.objects.shown().with_asker(), pk=message_id, room=found.key, role=Message.Role.ASSISTANT
    )
    if refusal := steering.refusal(request, found, reply):
        raise HttpError(403, refusal)
    return found, reply


@api.post("/rooms/{room}/messages/{message_id}/stop", response=MessageOut,
          summary="Stop a reply to the key's own message (a disconnect never does)")
def stop(request, room: str, message_id: int):
    _, reply = _reply_to_steer(request, room, message_id)
    if not workers.stop(reply.pk) and reply.is_active:
        raise HttpError(409, "The reply changed meanwhile; look again.")
    reply.refresh_from_db()
    return MessageOut.of(reply)


@api.post("/rooms/{room}/messages/{message_id}/retry", response={202: MessageOut},
          summary="Answer again after a failed, cancelled or interrupted reply to the key's own message",
          description="Counts against the key's and the room's budget, as a post does (429 past it).")
def retry(request, room: str, message_id: int):
    found, reply = _reply_to_steer(request, room, message_id)
    if not reply.is_retryable:
        raise HttpError(409, f"Only a failed, cancelled or interrupted reply can be retried; this one is {reply.status}.")
    if refusal := limits.check_message(request, found.key):
        return error(refusal.message, 429, Retry_After=refusal.retry_after)
    retried = Message.objects.retry(reply.pk)
    if retried is None:
        raise HttpError(409, "The reply changed meanwhile; look again.")
    workers.request_reply(found.key)
    return Status(202, MessageOut.of(retried))


class SearchResult(Schema):
    id: int
    room: str
    author: str = Field(description="A person's display name (user messages); empty for replies.")
    bot: str = Field(description="The bot that wrote it (replies); empty for people's messages.")
    created: datetime
    snippet: str = Field(description="HTML: the text around the matches, escaped, the matches in <mark>.")


@api.get("/search", response=list[SearchResult], summary="Messages of the key's rooms that match a query, best first",
         description='Words (all must match), "quoted phrases", `or`, and -word to leave out; at most 200 characters. '
                     "`room` narrows it to one room; `limit` 1 to 50 (default 20).")
def search_messages(request, q: str = "", room: str = "", limit: str = ""):
    try:
        found = search.find_readable(q, access.rooms_for(access.account(request)), room, search.limit_of(limit))
    except search.BadQuery as problem:
        return error(str(problem), 400)
    return [vars(result) for result in found]


@api.get("/rooms/{room}/events", summary="The room's events over SSE, resumable with Last-Event-ID or ?after=",
         description="`event: message` (a message's whole JSON), `event: delta` ({id, offset, text}), "
                     "`event: removed` ({id}); each with an `id:` line.")
async def room_events(request, room: str, after: int | None = None):
    who = access.account(request)
    found = await sync_to_async(access.room_for)(who, room)
    return await events.follow(request, found, after, who=who)


@api.post("/rooms/{room}/catch-up", summary="A summary of what the key has not read in the room, over SSE",
          description="`event: text` ({text}) as the bot writes it, then `event: done`; nothing is saved. From the "
                      "key's own read position (which then moves on), or from event number `after`.")
async def catch_up(request, room: str, after: int | None = None):
    if after is not None and not 0 <= after < 2**63:
        raise HttpError(400, "after is a room's event number: a whole number, 0 or more.")
    found = await sync_to_async(access.room_for)(access.account(request), room)
    return await summaries.catch_up(request, found, after)
