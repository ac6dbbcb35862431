"""Template context every page gets."""

import json

from bots import registry
from chat import dom

IDS_JSON = json.dumps(dom.IDS)


def parley(request):
    """The rooms, for the switcher on every page, and the page's element ids (chat.dom): by name
    for templates, as JSON for the page's JavaScript."""
    return {"rooms_nav": registry.rooms(), "ids": dom.IDS, "ids_json": IDS_JSON}
