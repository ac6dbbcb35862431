"""The garbage collector leaves the long-lived heap alone: what open sockets hold is frozen, not traversed.

Python's full collection walks every tracked object in the process, and it runs whenever a quarter
as many objects again as the last one kept have lived through two younger collections. A server of
10,000 room sockets holds about 750,000 tracked objects that stay as long as their sockets do, and
streaming makes objects that live just long enough to be promoted (each socket's pending write, its
reactor handle): measured there, a full collection every 2 to 3 s, each holding the event loop for
about half a second, 38 % of the server's CPU (README, "The garbage collector at 10,000 sockets").

``gc.freeze()`` moves every tracked object to a generation no collection walks (it costs no more
than moving three lists). Frozen objects that go on to die without a cycle are freed by their
reference counts as always; those in a cycle wait for the next thaw, when everything is unfrozen,
collected once and frozen again. A thaw comes once the frozen objects are a quarter more than the
last one left (new sockets, or cycles that died frozen: these stay under a quarter of the heap), and
at least every ``HEAP_THAW_INTERVAL``: at 10,000 steady sockets, every few minutes instead of every
few seconds.
"""

import asyncio
import gc
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

GROWTH = 1.25  # a thaw once the frozen objects are this many times as many as the last thaw left


def thaw():
    """Unfreeze, collect everything once, freeze again: the cycles frozen since the last thaw are freed.
    Returns the seconds it held the process and the number of objects it freed."""
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    return time.perf_counter() - started, freed


async def keep_frozen():
    """Freeze the heap every HEAP_FREEZE_INTERVAL seconds (0: never); thaw it once what is frozen has
    grown by a quarter since the last thaw left it, or HEAP_THAW_INTERVAL seconds after that thaw."""
    if not settings.HEAP_FREEZE_INTERVAL:
        return
    loop = asyncio.get_running_loop()
    # What the process made to start (modules, settings, the first connection's) is frozen at once,
    # uncollected: a thaw now would be a full collection's pause at the first page, for little.
    gc.freeze()
    thawed, kept = loop.time(), gc.get_freeze_count()
    while True:
        await asyncio.sleep(settings.HEAP_FREEZE_INTERVAL)
        gc.freeze()
        # CPython's own rule for a full collection, applied to what is frozen: the cycles that died
        # frozen never pass a quarter of the heap, and the thaws cost in proportion to what they free.
        if gc.get_freeze_count() > kept * GROWTH or loop.time() - thawed >= settings.HEAP_THAW_INTERVAL:
            held, freed = thaw()
            thawed, kept = loop.time(), gc.get_freeze_count()
            logger.info("heap thawed and collected in %.0f ms: %d objects freed, %d frozen again", held * 1000, freed, kept)
