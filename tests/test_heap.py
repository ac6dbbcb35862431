"""The server's heap out of the garbage collector's reach: frozen on its interval, thawed and collected on another."""

import asyncio
import gc
import weakref

import pytest

from chat.server import heap
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.waiting import until


class Node:
    pass


def a_cycle():
    """Two objects that hold each other, held by nothing else: only a collection frees them. A weak
    reference to one, and its id (to look for it among the collector's objects without holding it)."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first), id(first)


def collected_by_gc(identity):
    """Whether the object is among those the collector walks (not frozen)."""
    return any(id(obj) == identity for obj in gc.get_objects())


@pytest.fixture
def thawed():
    """Tests freeze this test process's heap: it is thawed after each."""
    yield
    gc.unfreeze()


async def test_a_frozen_cycle_outlives_collections_until_the_thaw(settings, thawed):
    settings.HEAP_FREEZE_INTERVAL = 0.01
    settings.HEAP_THAW_INTERVAL = 3600
    keeper = asyncio.create_task(heap.keep_frozen())
    try:
        alive, identity = a_cycle()
        await until(lambda: not collected_by_gc(identity))  # frozen at the next interval
        gc.collect()
        assert alive() is not None, "a full collection walked what was frozen"
        assert gc.get_freeze_count() > 0

        settings.HEAP_THAW_INTERVAL = 0  # the next interval thaws
        await until(lambda: alive() is None)
        assert gc.get_freeze_count() > 0, "frozen again after the thaw"
    finally:
        keeper.cancel()


async def test_an_interval_of_zero_freezes_nothing(settings, thawed):
    settings.HEAP_FREEZE_INTERVAL = 0
    gc.unfreeze()
    await asyncio.wait_for(heap.keep_frozen(), timeout=5)  # returns at once
    alive, identity = a_cycle()
    assert collected_by_gc(identity) and gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


@pytest.mark.django_db(transaction=True)
async def test_a_real_server_freezes_and_thaws_its_heap(upstream):
    """Under Daphne the process services keep the heap frozen from the first request on."""
    env = provider_env(upstream, HEAP_FREEZE_INTERVAL="0.1", HEAP_THAW_INTERVAL="0.3", LOG_LEVEL="INFO")
    with daphne(env) as server:  # its readiness check, a request, starts the services
        await until(lambda: "heap thawed and collected" in server.output())
        output = server.stop()
    assert "Traceback" not in output, output
