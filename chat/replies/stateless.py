"""Stateless replies: a conversation a client sends, answered as it is read, with nothing saved
(the direct SSE path /chat and the OpenAI-compatible /v1 both read replies here)."""

import asyncio
import contextvars

from django.conf import settings

from bots.providers import ProviderError
from chat import services
from chat.replies.reading import Reader, configured_provider


class StatelessSlots:
    """This loop's streaming slots for stateless replies, apart from the rooms': a flood of /chat
    or /v1 requests waits for these and never delays a room's reply."""

    def __init__(self):
        self.slots = asyncio.Semaphore(settings.MAX_STATELESS_STREAMS)


def slots():
    """The running loop's stateless streaming slots."""
    return services.current().part(StatelessSlots).slots


class Ended:
    """How a reply that never started ended: its error, no usage."""

    def __init__(self, error):
        self.error, self.usage = error, None


async def reply_pieces(bot, newest_first):
    """A stateless reply as it is read: ("text", piece) as pieces come, ("idle", None) after each
    SSE_KEEPALIVE of silence, and last ("end", the Reader: its error and usage). The conversation
    is (role, content) pairs, newest first; the question itself counts too: a long one is cut to
    its end rather than overflow the model. Closing the generator closes the upstream at once.
    """
    try:
        reader = Reader(configured_provider(bot))
    except ProviderError as exc:
        yield "end", Ended(exc)
        return
    reading = asyncio.get_running_loop().create_task(_read(reader, bot, newest_first), context=contextvars.Context())
    try:
        while True:
            try:
                # asyncio.timeout, never wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that lands as the wait ends, and a client's disconnect was lost so (seen here).
                async with asyncio.timeout(settings.SSE_KEEPALIVE):
                    await reader.arrived.wait()
            except TimeoutError:
                yield "idle", None
                continue
            reader.arrived.clear()
            # Read once: the reader may end while this generator waits at a yield below, and what
            # it read meanwhile is taken on the next turn, with the end.
            ended = reader.ended
            for text in reader.take_each(final=ended):
                if text:
                    yield "text", text
            if ended:
                break
        yield "end", reader
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


async def _read(reader, bot, newest_first):
    """Read the reply while holding one of this process's stateless streaming slots."""
    async with slots():
        await reader.run(bot, newest_first)
