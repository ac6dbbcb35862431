"""Posting into a room, and Stop and Retry of a reply. Views save rows; the broadcaster tells the pages."""

import functools

from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chat import access, dom, identity, limits, steering
from chat.delivery import frames
from chat.models import Message
from chat.replies import workers
from chat.replies.say import say
from chat.text import tidy
from chat.web.answers import answer, refuse
from chat.web.pages import message_or_404, room_page


@require_POST
def post(request, room):
    """Save the person's message and a pending reply per bot that answers it, start the replies, answer at once."""
    room = access.room_for(access.account(request), room)
    content = tidy(request.POST.get("content", "")).strip()
    me = identity.of_request(request)
    problem, status, retry_after = "", 422, None
    if not content:
        problem = _("Write a message before sending.")
    elif len(content) > settings.MESSAGE_MAX_CHARS:
        problem = _("Messages are limited to %(most)s characters; this one has %(count)s.") % {"most": settings.MESSAGE_MAX_CHARS, "count": len(content)}
    elif muted := steering.muted(request, me, room):
        problem, status = _("%(muted)s You can read the room meanwhile.") % {"muted": muted}, 403
    elif refusal := limits.check_message(request, room.key):
        problem, status, retry_after = refusal.message, 429, refusal.retry_after
    if problem:
        # Refused: nothing is saved, and the text stays in the box to send again.
        page = functools.partial(room_page, request, room, content=content)
        return refuse(request, dom.IDS["form_error"], problem, status, page=page, retry_after=retry_after)
    if me.kind == identity.Kind.GUEST:
        limits.note_address(me.tag, request)  # for a mute of them, should a moderator make one
    say(room, content, me)
    return answer(request, room, frames.update(dom.IDS["form_error"]))


@require_POST
def stop(request, room, pk):
    """Stop a pending or streaming reply, whichever process streams it: the row is the signal."""
    room, reply = message_or_404(request, room, pk, role=Message.Role.ASSISTANT)
    if refusal := steering.refusal(request, room, reply):
        return refuse(request, dom.IDS["notice"], refusal, 403)
    workers.stop(reply.pk)
    return answer(request, room)


@require_POST
def retry(request, room, pk):
    """Answer again, in place, after a failed, cancelled or interrupted reply: within the asker's and the room's budget."""
    room, reply = message_or_404(request, room, pk, role=Message.Role.ASSISTANT)
    if refusal := steering.refusal(request, room, reply):
        return refuse(request, dom.IDS["notice"], refusal, 403)
    if not reply.is_retryable:
        return answer(request, room)  # already answering again (a second click, another page): nothing to spend
    if over := limits.check_message(request, room.key):
        return refuse(request, dom.IDS["notice"], over.message, 429, retry_after=over.retry_after)
    if Message.objects.retry(reply.pk):
        workers.request_reply(room.key)
    return answer(request, room)
