"""What people do besides posting: pick a display name, vote on replies."""

import functools

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from chat.delivery import frames
from chat.models import Feedback, Message
from chat.people import check_name, requester
from chat.web.answers import TURBO_STREAM, answer, refuse, wants_stream
from chat.web.views import message_or_404

VOTES = ("up", "down", "none")


def _next(request):
    """Where the profile form goes back to: the page it came from, if it is one of ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _profile_page(request, *, error="", name=None, status=200):
    context = {"me": requester(request), "error": error, "name": name, "next": _next(request)}
    return render(request, "chat/profile.html", context, status=status)


@require_http_methods(["GET", "POST"])
def profile(request):
    """GET: the name form. POST name: the session's display name from now on (400 with a sentence if it cannot be)."""
    if request.method == "GET":
        return _profile_page(request)
    if request.user.is_authenticated:
        return refuse(request, "profile_error", "Signed in, you post under your account's name.", 400)
    name, problem = check_name(request.POST.get("name"))
    if problem:
        page = functools.partial(_profile_page, request, name=request.POST.get("name", ""))
        return refuse(request, "profile_error", problem, 400, page=page)
    requester(request)  # a new guest gets their id before their name
    request.session["name"] = name
    if wants_stream(request):
        # Every "you post as" on the page; messages already sent keep the name they were sent under.
        return HttpResponse(frames.stream("update", "my_name", escape(name)) + frames.stream("update", "profile_error"), content_type=TURBO_STREAM)
    response = redirect(_next(request))
    response.status_code = 303
    return response


@require_POST
def feedback(request, room, pk):
    """Vote on a finished reply: value up, down, or none to take the vote back; one vote per person."""
    room, reply = message_or_404(room, pk, role=Message.Role.ASSISTANT)
    value = request.POST.get("value")
    if value not in VOTES:
        return refuse(request, reply.feedback_dom_id + "_error", 'Send value "up", "down" or "none".', 400)
    if not reply.takes_feedback:
        return refuse(request, reply.feedback_dom_id + "_error", "Only a finished reply takes votes.", 409)
    Feedback.objects.cast(reply, requester(request).id, value)
    return answer(request, room)
