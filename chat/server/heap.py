"""The garbage collector leaves the long-lived heap alone: what open sockets hold is frozen, not traversed.

Python's full collection walks every tracked object in the process, and it runs whenever a quarter
as many objects again as the last one kept have lived through two younger collections. A server of
10,000 room sockets holds about 750,000 tracked objects that stay as long as their sockets do, and
streaming makes objects that live just long enough to be promoted (each socket's pending write, its
reactor handle): measured there, a full collection every 2 to 3 s, each holding the event loop for
about half a second, 38 % of the server's CPU (README, "The garbage collector at 10,000 sockets").

``gc.freeze()`` moves every tracked object to a generation no collection walks (it costs no more
than moving three lists). Each freeze follows a collection of what is not frozen yet (what the last
few seconds made), so what was garbage then is freed, not frozen (the objects the process made to
start are frozen uncollected, once). Frozen objects that go on to
die without a cycle are freed by their reference counts as always; those in a cycle (a closed
socket's state) wait for a thaw, when everything is unfrozen, collected once and frozen again. A
thaw comes once a quarter of the room sockets frozen open (open now, or closed since the last thaw)
have closed (at least ``SOCKETS_PER_THAW``; a socket that opened and closed between two freezes was
never frozen and does not count), and at least every ``HEAP_THAW_INTERVAL`` for the rest (a finished reply's
or event stream's state): sockets that open add only what is alive, which a thaw would walk to free
nothing.
"""

import asyncio
import gc
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

SHARE = 4  # a thaw once 1/SHARE of the sockets frozen open have closed
SOCKETS_PER_THAW = 100  # and at least this many: a few thousand objects, not worth a pause before


class Sockets:
    """Room sockets open now, and those frozen open that have closed since the last thaw (the protocol
    counts them, on the event loop's thread), and the number of the last freeze."""

    open = 0
    closed = 0
    freezes = 0


def socket_opened():
    """A room socket completed its handshake: the number of the last freeze, for socket_closed."""
    Sockets.open += 1
    return Sockets.freezes


def socket_closed(opened_at):
    """A room socket that had opened has closed: its state may be a frozen cycle now, if a freeze came
    after it opened (one that closed before was collected with what the interval made)."""
    Sockets.open -= 1
    if opened_at < Sockets.freezes:
        Sockets.closed += 1


def freeze(collect=True):
    """Collect what is not frozen yet (only what the last interval made and kept), unless told not to,
    then freeze what is left."""
    if collect:
        gc.collect()
    gc.freeze()
    Sockets.freezes += 1


def thaw():
    """Unfreeze, collect everything once, freeze again: the cycles frozen since the last thaw are freed.
    Returns the seconds it held the process and the number of objects it freed."""
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    Sockets.closed = 0
    return time.perf_counter() - started, freed


def due():
    """Whether a quarter of the sockets frozen open (open now or closed since the last thaw) have closed."""
    return Sockets.closed >= max(SOCKETS_PER_THAW, (Sockets.open + Sockets.closed) / SHARE)


async def keep_frozen():
    """Every HEAP_FREEZE_INTERVAL seconds (0: never), collect what is not frozen and freeze what is left;
    thaw once a quarter of the sockets frozen open have closed, or HEAP_THAW_INTERVAL seconds after the last thaw."""
    if not settings.HEAP_FREEZE_INTERVAL:
        return
    loop = asyncio.get_running_loop()
    # What the process made to start (modules, settings, the first connection's) is frozen at once,
    # uncollected: a collection now would be a full collection's pause at the first page, for little.
    freeze(collect=False)
    thawed = loop.time()
    while True:
        await asyncio.sleep(settings.HEAP_FREEZE_INTERVAL)
        freeze()
        if due() or loop.time() - thawed >= settings.HEAP_THAW_INTERVAL:
            closed = Sockets.closed
            held, freed = thaw()
            thawed = loop.time()
            logger.info(
                "heap thawed and collected in %.0f ms: %d objects freed (%d sockets closed since the last thaw), %d frozen again",
                held * 1000, freed, closed, gc.get_freeze_count(),
            )
