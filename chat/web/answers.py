"""How form endpoints answer: Turbo Stream frames for Turbo's fetches, a 303 back to the room for plain forms."""

from urllib.parse import urlsplit

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from chat.delivery import frames

TURBO_STREAM = "text/vnd.turbo-stream.html"


def wants_turbo_stream(request):
    """Turbo's form submissions accept Turbo Stream answers; plain forms get a redirect."""
    return TURBO_STREAM in request.headers.get("Accept", "")


def see_other(to, *args, **kwargs):
    """303 to redirect()'s to (a URL name and its arguments, or a path): after a form post, the browser GETs it."""
    response = redirect(to, *args, **kwargs)
    response.status_code = 303
    return response


def answer(request, room, frames_html=""):
    """Answer a form post that worked: frames for Turbo (the socket does the rest), 303 to the room otherwise."""
    if wants_turbo_stream(request):
        return HttpResponse(frames_html, content_type=TURBO_STREAM)
    return see_other("chat:room", room=room.key)


def refuse(request, target, problem, status, *, page=None, retry_after=None):
    """Answer a refused form post with a sentence saying why: into element target for Turbo,
    else the page page(error=, status=) renders with it (a plain response with the sentence if none)."""
    if wants_turbo_stream(request):
        response = HttpResponse(frames.update(target, problem), content_type=TURBO_STREAM, status=status)
    elif page is not None:
        response = page(error=problem, status=status)
    else:
        response = HttpResponse(problem, content_type="text/plain; charset=utf-8", status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def page_sent_from(request):
    """The path of this site's page the form was sent from (its Referer), else the lobby."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        parts = urlsplit(referer)
        return local_path(parts.path + (f"?{parts.query}" if parts.query else ""))
    return reverse("chat:lobby")


def local_path(path):
    """path as a link that stays on this site: "//host/x" (a path the browser asked for) would leave it."""
    return "/" + path.lstrip("/\\")
