"""Thumbs up and down on a finished reply: one vote per person, none from a muted one."""

from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chat import dom, identity, limits, steering
from chat.models import Feedback, Message
from chat.web.answers import answer, refuse
from chat.web.pages import message_or_404

VOTES = ("up", "down", "none")


@require_POST
def feedback(request, room, pk):
    """Vote on a finished reply: value up, down, or none to take the vote back; one vote per person."""
    room, reply = message_or_404(request, room, pk, role=Message.Role.ASSISTANT)
    value = request.POST.get("value")
    if value not in VOTES:
        return refuse(request, dom.feedback_error(reply.pk), _('Send value "up", "down" or "none".'), 400)
    if not reply.takes_feedback:
        return refuse(request, dom.feedback_error(reply.pk), _("Only a finished reply takes votes."), 409)
    me = identity.of_request(request)  # a new guest's token comes before the count: it is who votes
    if muted := steering.muted(request, me, room):
        return refuse(request, dom.feedback_error(reply.pk), muted, 403)
    if refusal := limits.check_vote(request):
        return refuse(request, dom.feedback_error(reply.pk), refusal.message, 429, retry_after=refusal.retry_after)
    Feedback.objects.cast(reply, me.tag, value)
    return answer(request, room)
