"""The server's heap out of the garbage collector's reach: frozen on its interval, thawed and collected on another."""

import asyncio
import gc
import logging
import re
import weakref

import pytest
import websockets

from chat.server import heap
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.waiting import until


class Node:
    pass


def a_cycle():
    """Two objects that hold each other: once nothing else holds them, only a collection frees them."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return first


def collected_by_gc(identity):
    """Whether the object of this id is among those the collector walks (not frozen)."""
    return any(id(obj) == identity for obj in gc.get_objects())


@pytest.fixture
def thaws(caplog):
    """How many thaws the heap keeper has logged; the test process's heap is unfrozen after the test."""
    caplog.set_level(logging.INFO, logger="chat.server.heap")
    heap.Sockets.open = heap.Sockets.closed = heap.Sockets.freezes = 0
    yield lambda: sum("heap thawed" in record.getMessage() for record in caplog.records)
    gc.unfreeze()
    heap.Sockets.open = heap.Sockets.closed = heap.Sockets.freezes = 0


async def a_dead_frozen_cycle():
    """A weak reference to a cycle that was frozen while alive and has died since."""
    cycle = a_cycle()
    await until(lambda: not collected_by_gc(id(cycle)))  # frozen at the next interval
    alive = weakref.ref(cycle)
    del cycle  # no await from here on: the keeper does not run before the check below
    gc.collect()
    assert alive() is not None, "a full collection walked what was frozen"
    return alive


async def frozen(objects):
    """Wait until the keeper has frozen these (alive) objects."""
    await until(lambda: not any(collected_by_gc(id(obj)) for obj in objects))


async def test_a_frozen_cycle_waits_for_a_quarter_of_the_sockets_to_close_not_for_the_heap_to_grow(settings, thaws):
    settings.HEAP_FREEZE_INTERVAL = 0.01
    settings.HEAP_THAW_INTERVAL = 3600
    opened = [heap.socket_opened() for _ in range(800)]  # before the keeper's first freeze
    keeper = asyncio.create_task(heap.keep_frozen())
    try:
        alive = await a_dead_frozen_cycle()
        # The heap grows by a third, alive (new sockets' state): frozen, and no thaw walks it.
        ballast = [Node() for _ in range(gc.get_freeze_count() // 3)]  # tracked: an empty dict is not
        await frozen(ballast[:1] + ballast[-1:])
        assert thaws() == 0 and alive() is not None
        # A socket that opens and closes between two freezes was never frozen: it does not count.
        heap.socket_closed(heap.socket_opened())  # no await between: no freeze between
        assert heap.Sockets.closed == 0
        for at in opened[:199]:
            heap.socket_closed(at)
        await frozen([Node()])  # a freeze later: still no thaw, a quarter of 800 is 200
        assert thaws() == 0 and alive() is not None
        heap.socket_closed(opened[199])
        await until(lambda: alive() is None)
        assert thaws() == 1 and heap.Sockets.closed == 0 and heap.Sockets.open == 600
        assert gc.get_freeze_count() > len(ballast), "frozen again after the thaw"
    finally:
        keeper.cancel()


async def test_garbage_is_collected_before_a_freeze_not_frozen(settings, thaws):
    settings.HEAP_FREEZE_INTERVAL = 0.01
    settings.HEAP_THAW_INTERVAL = 3600
    keeper = asyncio.create_task(heap.keep_frozen())
    gc.disable()  # no automatic collection: only the keeper's can free the cycle
    try:
        await frozen([Node()])  # the keeper's first freeze is behind it
        cycle = a_cycle()
        dead = weakref.ref(cycle)
        del cycle
        await frozen([Node()])
        assert dead() is None and thaws() == 0
    finally:
        gc.enable()
        keeper.cancel()


async def test_a_frozen_cycle_waits_at_most_the_thaw_interval(settings, thaws):
    settings.HEAP_FREEZE_INTERVAL = 0.01
    settings.HEAP_THAW_INTERVAL = 3600
    keeper = asyncio.create_task(heap.keep_frozen())
    try:
        alive = await a_dead_frozen_cycle()
        settings.HEAP_THAW_INTERVAL = 0.2
        await until(lambda: alive() is None)
        assert thaws() == 1
    finally:
        keeper.cancel()


async def test_an_interval_of_zero_freezes_nothing(settings, thaws):
    settings.HEAP_FREEZE_INTERVAL = 0
    gc.unfreeze()
    await asyncio.wait_for(heap.keep_frozen(), timeout=5)  # returns at once
    cycle = a_cycle()
    assert collected_by_gc(id(cycle)) and gc.get_freeze_count() == 0
    alive = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert alive() is None


@pytest.mark.django_db(transaction=True)
async def test_a_real_server_freezes_and_thaws_its_heap(upstream):
    """Under Daphne the process services keep the heap frozen from the first request on."""
    env = provider_env(upstream, HEAP_FREEZE_INTERVAL="0.1", HEAP_THAW_INTERVAL="0.3", LOG_LEVEL="INFO")
    # The interval thaws, again and again.
    with daphne(env) as server:  # its readiness check, a request, starts the services
        await until(lambda: server.output().count("heap thawed and collected") >= 2)
        output = server.stop()
    assert "Traceback" not in output, output


@pytest.mark.django_db(transaction=True)
async def test_a_real_server_thaws_once_a_quarter_of_its_sockets_have_closed(upstream):
    """Daphne's WebSocket protocol counts the room sockets that open and close for the heap keeper."""
    env = provider_env(upstream, HEAP_FREEZE_INTERVAL="0.1", HEAP_THAW_INTERVAL="3600", LOG_LEVEL="INFO",
                       ROOM_SOCKETS_PER_ADDRESS="500")
    thawed = re.compile(r"\((\d+) sockets closed since the last thaw\)")
    with daphne(env) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/?after=0"

        async def opened():
            socket = await websockets.connect(url, origin=server.url)
            await socket.recv()  # the catch-up: open on the server's side
            return socket

        # Sockets open in rounds of 25, each round closed once the next is open: those a freeze
        # (every 0.1 s) finds open count when they close; a thaw comes once 100 of them have.
        held, rounds = [], 0
        while not thawed.search(server.output()):
            assert rounds < 200, "no thaw after 5,000 sockets closed"
            fresh = [await opened() for _ in range(25)]
            for socket in held:
                await socket.close()
            held, rounds = fresh, rounds + 1
        assert int(thawed.search(server.output())[1]) >= heap.SOCKETS_PER_THAW
        assert rounds >= heap.SOCKETS_PER_THAW // 25 + 1  # not before 100 had closed
        for socket in held:
            await socket.close()
        output = server.stop()
    assert "Traceback" not in output, output
