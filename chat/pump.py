"""The pump: reads a provider's stream into a buffer as fast as it comes, as text a row and a page agree on."""

import asyncio
import re

NEWLINES = re.compile(r"\r\n?")


def tidy(text):
    """Text as rows and pages keep it.

    Newlines become \\n (an HTML parser turns \\r\\n into \\n, and growth offsets must count the
    same characters on both sides), NUL goes (PostgreSQL refuses it), and a surrogate without its
    other half becomes U+FFFD (no database can encode it).
    """
    text = NEWLINES.sub("\n", text).replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Two halves that came in separate chunks pair up here; a lone half is replaced.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class Seams:
    """Tidies streamed text chunk by chunk, holding back a last character the next chunk may
    complete (the \\r of a \\r\\n, the first half of a surrogate pair split across two chunks)."""

    def __init__(self):
        self.carry = ""

    def feed(self, text):
        """The tidy text of everything fed so far, less what waits for its other half."""
        text, self.carry = self.carry + text, ""
        if text and (text[-1] == "\r" or "\ud800" <= text[-1] <= "\udbff"):
            text, self.carry = text[:-1], text[-1]
        return tidy(text)

    def end(self):
        """The stream ended: whatever was held back, tidied."""
        text, self.carry = self.carry, ""
        return tidy(text)


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
