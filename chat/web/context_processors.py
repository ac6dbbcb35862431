"""Template context every page gets."""

from bots.registry import BOTS


def bots_nav(request):
    """The bots, for the switcher on every page."""
    return {"bots_nav": BOTS.values()}
