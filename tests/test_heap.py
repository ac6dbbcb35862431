"""The server's heap out of the garbage collector's reach: frozen on its interval, thawed and collected on another."""

import asyncio
import gc
import logging
import weakref

import pytest

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
    yield lambda: sum("heap thawed" in record.getMessage() for record in caplog.records)
    gc.unfreeze()


async def a_dead_frozen_cycle():
    """A weak reference to a cycle that was frozen while alive and has died since."""
    cycle = a_cycle()
    await until(lambda: not collected_by_gc(id(cycle)))  # frozen at the next interval
    alive = weakref.ref(cycle)
    del cycle  # no await from here on: the keeper does not run before the check below
    gc.collect()
    assert alive() is not None, "a full collection walked what was frozen"
    return alive


async def test_a_frozen_cycle_waits_for_the_heap_to_grow_by_a_quarter(settings, thaws):
    settings.HEAP_FREEZE_INTERVAL = 0.01
    settings.HEAP_THAW_INTERVAL = 3600
    keeper = asyncio.create_task(heap.keep_frozen())
    try:
        alive = await a_dead_frozen_cycle()
        assert thaws() == 0
        ballast = [Node() for _ in range(gc.get_freeze_count() // 3)]  # a third more, alive (and tracked: an empty dict is not)
        await until(lambda: alive() is None)
        assert thaws() == 1 and gc.get_freeze_count() > len(ballast), "frozen again after the thaw"
    finally:
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
