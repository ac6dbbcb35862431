"""A cap on the replies one process streams at once (rooms and /chat); more wait their turn."""

import asyncio
import weakref

from django.conf import settings

_slots = weakref.WeakKeyDictionary()  # event loop -> its semaphore


def streaming_slot():
    """The semaphore to hold while streaming a reply in this process's event loop."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(settings.MAX_STREAMING_REPLIES)
    return slots
