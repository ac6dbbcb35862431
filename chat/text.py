"""Text as rows and pages keep it, whether a person typed it or a model streamed it."""

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
