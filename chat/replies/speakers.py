"""A bot speaks only for itself: its reply is cut where the model starts another speaker's line.

The prompt shows everyone else's lines as ``Name: text`` (``labelled``). Small models go on to
write the room's next lines themselves; stop sequences ask the provider to end at a new line of
another speaker's, and ``Guard`` cuts what gets through anyway (a label mid-line, one the stop
sequences left out, ``**Ana**:``, one split over two chunks), holding back the few characters
that could still become one, so nothing shown is ever taken back.
"""

import re

from chat.names import ANONYMOUS

# Characters of Markdown emphasis or a mention a model may wrap a speaker's label in.
MARKUP = "*_@"
# After a label's name and before its colon: emphasis closing, spaces.
BEFORE_COLON = re.compile(r"[*_]*[ \t]*")
# Characters past the longest label that still could be the start of one (markup, spaces).
SLACK = 8
# A label's colon is followed (past closing emphasis) by a space, a line's end or the text's end:
# "https://", "10:30" or "Note:x" is no label, whoever in the room is called https, 10 or Note.
COLON = r":(?=[*_]*(?:\s|\Z))"
# A guest who chose no name is "Guest 4821" (chat.identity): at its opening a model writes that
# shape with the asker's number or another, and either is a label, not the reply's words.
UNNAMED = rf"{ANONYMOUS} \d{{4}}"
UNNAMED_SO_FAR = re.compile(rf"{ANONYMOUS.lower()} (\d{{0,4}})([*_]*[ \t]*)")


def label(name):
    """How the prompt opens a line of name's."""
    return f"{name}:"


def stop_sequence(name):
    """Where a reply ends: a new line of name's (a label at the reply's very opening is the reply's own, see Guard)."""
    return f"\n{label(name)}"


def labelled(name, content):
    """A line of the room as a bot reads it."""
    return f"{label(name)} {content}"


def _alternatives(names):
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


class Guard:
    """Tidies one streamed reply: strips the labels at its opening (its own, or ones it mistook for
    its own), cuts it before any other speaker's label after that, and holds back whatever could
    still turn out to be one.

    ``feed(text)`` answers the text safe to show now; ``end()`` the rest when the stream ends.
    ``cut`` is True once another speaker's line began (read no further); ``spoke`` once some text
    of the bot's own was let through.
    """

    def __init__(self, own, others):
        own = [name for name in dict.fromkeys(own) if name]
        folded_own = {name.lower() for name in own}
        self.others = [name for name in dict.fromkeys(others) if name and name.lower() not in folded_own]
        self.folded = [name.lower() for name in self.others]
        self.window = max(map(len, self.folded), default=0) + SLACK
        self.initials = {name[0] for name in self.folded} | set(MARKUP)  # where a label may begin
        names = _alternatives(self.others)
        # Another speaker's label: not inside a word, perhaps in emphasis, then a colon.
        self.other = re.compile(rf"(?<!\w)[{MARKUP}]*(?:{names})[*_]*[ \t]*{COLON}", re.IGNORECASE) if names else None
        # At the opening, a label is the model's own line's (small models label it, often with the
        # asker's name: SmolLM2 did so in every reply measured): dropped, and what follows kept.
        opening = _alternatives([*own, *self.others])
        self.label = re.compile(rf"\s*[{MARKUP}]*(?:{opening}|{UNNAMED})[*_]*[ \t]*{COLON}[*_]*[ \t]*", re.IGNORECASE)
        self.label_folded = [name.lower() for name in own] + self.folded
        self.held = ""  # text read but not yet let through
        self.before = ""  # the last character let through: whether a label may start right after it
        self.opening = True  # nothing let through yet: the reply may still open with a label
        self.cut = False
        self.spoke = False

    def feed(self, text):
        """The text that may be shown now, with what came before it."""
        if self.cut:
            return ""
        self.held += text
        if self.opening and not self._open():
            return ""
        return self._release(final=False)

    def end(self):
        """The stream ended: what was held back, unless it is an opening label alone."""
        if self.cut:
            return ""
        if self.opening:
            while found := self.label.match(self.held):
                self.held = self.held[found.end():]
            self.held, self.opening = self.held.lstrip(), False
        return self._release(final=True)

    def _open(self):
        """At the opening: drop its labels ("BelleBot: PirateBot: Ahoy"); False while more could follow."""
        while start := self.held.lstrip():
            if found := self.label.match(self.held):
                rest = self.held[found.end():]
                if not rest.strip():
                    return False  # "Ana: " so far: wait for what follows
                self.held = rest.lstrip()
                if "\n" in rest[:len(rest) - len(self.held)]:
                    break  # the labels' line ended: what follows is text, or another speaker's line
            elif self._could_be(start.lower(), self.label_folded) or _unnamed_so_far(start.lower()):
                return False  # "BelleBot" (or "Guest 48") so far
            else:
                self.held = start
                break
        else:
            return False
        self.opening = False
        return True

    def _release(self, *, final):
        """Let through held text up to another speaker's label (then cut) or up to what could become one."""
        text = self.before + self.held
        if self.other is not None and (found := self.other.search(text, len(self.before))):
            start = found.start() - len(self.before)
            if final or text[found.end():].strip("*_"):
                shown = self.held[:start].rstrip()
                self.held, self.cut = "", True
                return self._let(shown)
            # "Ana:" or "https:" so far: a label, or a link's scheme; what follows the colon tells.
            keep = len(self.held[:start].rstrip())
            shown, self.held = self.held[:keep], self.held[keep:]
            return self._let(shown)
        if final:
            shown, self.held = self.held, ""
            return self._let(shown)
        keep = len(self.held)
        # Trailing spaces wait: a cut right after them must not leave them shown.
        keep = max(len(self.held.rstrip()), keep - self.window)
        for start in range(max(0, len(self.held) - self.window), keep):
            previous = self.held[start - 1] if start else self.before
            if self.held[start].lower() not in self.initials or (previous and (previous.isalnum() or previous == "_")):
                continue
            if self._could_be(self.held[start:].lower(), self.folded):
                # The spaces before a label wait with it: a cut there must not leave them shown.
                keep = len(self.held[:start].rstrip())
                break
        shown, self.held = self.held[:keep], self.held[keep:]
        return self._let(shown)

    @staticmethod
    def _could_be(text, names):
        """Whether text (folded) is the start of one of names' labels, or all of one but its colon."""
        text = text.lstrip(MARKUP)
        if not text:
            return True
        for name in names:
            if len(text) <= len(name):
                if name.startswith(text):
                    return True
            elif text.startswith(name) and BEFORE_COLON.fullmatch(text, len(name)):
                return True
        return False

    def _let(self, shown):
        if shown:
            self.before = shown[-1]
            self.spoke = self.spoke or not shown.isspace()
        return shown


def _unnamed_so_far(text):
    """Whether text (folded) is the start of an unnamed guest's label ("guest 48"), but for its colon."""
    text = text.lstrip(MARKUP)
    if ANONYMOUS.lower().startswith(text):
        return True
    found = UNNAMED_SO_FAR.fullmatch(text)
    return found is not None and (len(found[1]) == 4 or not found[2])
