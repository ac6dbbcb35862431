"""A cap on the replies one process streams at once (rooms and /chat); more wait their turn."""

import asyncio

from django.conf import settings

from chat.loops import per_loop

#: The semaphore to hold while streaming a reply on the running event loop.
streaming_slot = per_loop(lambda: asyncio.Semaphore(settings.MAX_STREAMING_REPLIES))
