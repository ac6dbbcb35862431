"""A form sent from a page that is out of date (Django's CSRF refusal), answered in the app's own page.

Signing in rotates the CSRF token, so a tab opened before that sends an old one (as does a tab
whose cookies were cleared). Django's own refusal page is English, unstyled and without the app's
scripts; Turbo, finding the page's tracked script gone, reloaded the room instead, and the message
being written vanished without a word. This page says what happened and links back to the page the
form was on (Turbo renders it in place; the room's message box keeps its draft for the tab:
static/chat/parley.js).
"""

from django.shortcuts import render

from chat.web.answers import page_sent_from


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: 403, what happened in the reader's words (not Django's reason), and the way back."""
    return render(request, "403_csrf.html", {"back": page_sent_from(request)}, status=403)
