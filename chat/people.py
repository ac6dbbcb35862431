"""Who wrote a user message: the signed-in user's name, or a guest nickname kept in the session."""

import secrets

AUTHOR_MAX_CHARS = 40


def author_name(request):
    """The display name for messages posted with this request."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return (user.get_full_name() or user.get_username())[:AUTHOR_MAX_CHARS]
    name = request.session.get("nickname")
    if not name:
        name = request.session["nickname"] = f"Guest {secrets.randbelow(9000) + 1000}"
    return name[:AUTHOR_MAX_CHARS]
