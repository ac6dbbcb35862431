"""Template context every page gets."""

from bots.registry import ROOMS


def rooms_nav(request):
    """The rooms, for the switcher on every page."""
    return {"rooms_nav": ROOMS.values()}
