"""Waiting for a condition in a test, never for a fixed time."""

import asyncio
import time

from asgiref.sync import sync_to_async


async def until(predicate, timeout=10):
    """Wait until predicate() (a blocking call, run in a thread: it may query the database) is true; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await sync_to_async(predicate)():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")
