"""The pump: reads a provider's stream into a buffer as fast as it comes, as text a row and a page agree on."""

import asyncio

from .text import Seams


class Pump:
    """Reads the provider's stream into a buffer; the writer takes what has gathered once per flush."""

    def __init__(self):
        self.pieces = []
        self.seams = Seams()
        self.usage = None
        self.arrived = asyncio.Event()

    async def run(self, stream):
        try:
            async for chunk in stream:
                if chunk.usage:
                    self.usage = chunk.usage
                if chunk.text:
                    self.pieces.append(chunk.text)
                    self.arrived.set()
        finally:
            # Cancelled (Stop, shutdown): closing the generator closes the upstream connection now.
            await stream.aclose()
            self.arrived.set()

    def take(self, final=False):
        """All text read since the last take, tidied, as one piece (final: nothing held back)."""
        text = self.seams.feed("".join(self.pieces))
        self.pieces = []
        return text + self.seams.end() if final else text

    def take_each(self):
        """The chunks read since the last take, tidied, one by one (the demo's design writes each)."""
        pieces, self.pieces = self.pieces, []
        return [self.seams.feed(piece) for piece in pieces]
