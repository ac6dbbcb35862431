"""A guest's display name: the form, and POST /profile."""

import functools

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from chat import dom, identity
from chat.delivery import frames
from chat.names import check_name
from chat.web.answers import TURBO_STREAM, refuse, see_other, wants_turbo_stream


def _next(request):
    """Where the profile form goes back to: the page it came from, if it is one of ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _profile_page(request, *, error="", name=None, status=200):
    me = identity.peek(request)
    context = {"me": me, "offer": identity.offer(request, me), "error": error, "name": name, "next": _next(request)}
    return render(request, "chat/profile.html", context, status=status)


@require_http_methods(["GET", "POST"])
def profile(request):
    """GET: the name form. POST name: the session's display name from now on (400 with a sentence if it cannot be)."""
    if request.method == "GET":
        return _profile_page(request)
    if request.user.is_authenticated:
        return refuse(request, dom.IDS["profile_error"], _("Signed in, you post under your account's name."), 400)
    name, problem = check_name(request.POST.get("name"))
    if problem:
        page = functools.partial(_profile_page, request, name=request.POST.get("name", ""))
        return refuse(request, dom.IDS["profile_error"], problem, 400, page=page)
    identity.of_request(request)  # a new guest gets their token before their name
    request.session["name"] = name
    if wants_turbo_stream(request):
        # Every "you post as" on the page; messages already sent keep the name they were sent under.
        return HttpResponse(frames.update(dom.IDS["my_name"], name) + frames.update(dom.IDS["profile_error"]), content_type=TURBO_STREAM)
    return see_other(_next(request))
