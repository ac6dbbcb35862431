"""Template context every page gets."""

import json

from django.conf import settings

from chat import access, dom
from chat.web import languages

IDS_JSON = json.dumps(dom.IDS)


def parley(request):
    """The rooms this person may enter, for the switcher on every page, and the page's element ids (chat.dom): by name
    for templates, as JSON for the page's JavaScript; whether sign-up is open; the version of the
    JavaScript catalog."""
    return {
        "rooms_nav": access.rooms_of(request), "ids": dom.IDS, "ids_json": IDS_JSON, "signup_open": settings.SIGNUP == "open",
        "catalog_version": languages.catalog_version(),
    }
