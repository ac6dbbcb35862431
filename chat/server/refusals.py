"""A body over MAX_BODY_BYTES, answered before Django sees the request: 413 in each endpoint's own shape."""

from django.http import HttpResponse
from django.template.loader import render_to_string

from chat.api.completions import Refused
from chat.api.errors import error


def too_large(path, message):
    """The 413 for a request to path: OpenAI's error for /v1, {"error"} for /chat and /api, a page otherwise."""
    if path.startswith("/v1/"):
        return Refused(413, message).response()
    if path == "/chat" or path.startswith("/api/"):
        return error(message, 413)
    return HttpResponse(render_to_string("413.html", {"message": message}), status=413)


def wire(response):
    """A whole HTTP/1.1 response as bytes, ending the connection: the unread body leaves no way to go on."""
    body = response.content
    head = [f"HTTP/1.1 {response.status_code} Content Too Large"]
    head += [f"{name}: {value}" for name, value in response.items() if name.lower() not in {"content-length", "connection"}]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
