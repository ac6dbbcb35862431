"""Process services: the start-up sweep, the periodic sweep and upkeep, and interrupting replies on shutdown."""

import asyncio
import logging
import sys
from importlib import import_module

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connections

from bots.providers import get_provider
from chat import services
from chat.delivery import broadcast, fanout, presence
from chat.replies import workers
from chat.replies.sweep import rooms_waiting, sweep_stale_replies
from chat.server import heap

logger = logging.getLogger(__name__)


def alone():
    """True when this process is the only one: the in-memory channel layer reaches no other."""
    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def clear_expired_sessions():
    """What Django's clearsessions command does: delete the sessions past their expiry date."""
    try:
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    except NotImplementedError:  # a store that expires its sessions by itself (the cache's)
        pass


async def sweep_forever():
    """Run the sweep every REPLY_SWEEP_INTERVAL seconds, and clear expired sessions every
    CLEAR_SESSIONS_INTERVAL, in any live process: no cron job needed."""
    loop = asyncio.get_running_loop()
    sessions_cleared = loop.time()
    while True:
        await asyncio.sleep(settings.REPLY_SWEEP_INTERVAL)
        if settings.CLEAR_SESSIONS_INTERVAL and loop.time() - sessions_cleared >= settings.CLEAR_SESSIONS_INTERVAL:
            sessions_cleared = loop.time()
            try:
                await sync_to_async(clear_expired_sessions)()
            except Exception:  # noqa: BLE001 - a database hiccup: the next interval clears them
                logger.exception("clearing expired sessions failed; trying again next interval")
        try:
            # Every hop from the loop runs on one database thread whose connection is kept: let it go
            # here if it broke or aged out (CONN_MAX_AGE), so a database restart heals by itself.
            await sync_to_async(close_old_connections)()
            await services.on_every_lane(close_old_connections)
            await sync_to_async(sweep_stale_replies)(exclude=workers.active_replies())
            # Pending replies saved where no job could start (a shell, a dead process) get answered.
            workers.answer_waiting(await sync_to_async(rooms_waiting)())
            await fanout.rooms().maintain()
        except Exception:  # noqa: BLE001 - a database hiccup must not end the sweeping
            logger.exception("sweep failed; trying again next interval")


async def shut_down():
    """Mark this process's streaming replies interrupted and take back its presence counts."""
    await workers.interrupt_all()
    # The interrupted replies' frames are on their way: let them reach the other processes' pages.
    await broadcast.outbox().flush(timeout=5)
    try:
        await presence.roster().withdraw()
    except Exception:  # noqa: BLE001 - the shares expire on their own
        logger.warning("could not withdraw this process's presence counts", exc_info=True)
    try:
        await services.on_every_lane(connections.close_all)
    except Exception:  # noqa: BLE001 - the process is ending: the connections go with it
        logger.warning("could not close the lanes' connections", exc_info=True)


def on_shutdown():
    """Before Daphne's reactor stops: shut this process's services down."""
    future = asyncio.ensure_future(shut_down())
    try:
        from twisted.internet.defer import Deferred
    except ImportError:  # not under Daphne
        return None
    return Deferred.fromFuture(future)


class ProcessServices:
    """ASGI wrapper that starts this process's services before it serves its first connection.

    Daphne speaks no ASGI lifespan, so the first scope of any kind (a page, a socket, a health
    check) is the first moment there is a running event loop to start them on.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await asyncio.shield(services.current().start_once("start", self._start))
        return await self.app(scope, receive, send)

    async def _start(self):
        services.serve_here()
        # The loop lets go of the interpreter lock at every socket write and wait in epoll (thousands
        # of times a second while rooms stream); while a view's thread runs, it waits up to the
        # switch interval to take it back.
        sys.setswitchinterval(settings.THREAD_SWITCH_INTERVAL)
        try:
            get_provider().start()  # the model process starts and the transport's parts load now, not at the first reply
        except ImproperlyConfigured:
            logger.exception("the model is not configured: replies will fail saying why")
        except Exception:  # noqa: BLE001 - what it loads early, a first reply loads itself: serve anyway
            logger.exception("the provider did not start; its first reply will start what it needs")
        # A lone process restarting owns every unfinished reply: none can still be alive.
        try:
            await sync_to_async(sweep_stale_replies)(older_than=0 if alone() else None)
        except DatabaseError:
            # Serve anyway, or this start's failure would answer every request of the process (the
            # health check too) until it restarted; the periodic sweep finds the same replies once
            # they are REPLY_STALE_AFTER old, when the database answers.
            logger.exception("the start-up sweep could not reach the database; the periodic sweep will do it")
        services.current().keep_running("sweep", sweep_forever)
        try:
            from twisted.internet import reactor

            if reactor.running:
                reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
                # A server's heap: not in a test's process, whose cycles would wait for the thaw.
                services.current().keep_running("heap", heap.keep_frozen)
        except ImportError:
            pass
