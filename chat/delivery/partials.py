"""A message's partial, rendered once per state of its row and kept: frames and room pages share it.

Every view of a room renders its 50 recent messages (about 40 template lookups and two to four URL
reverses each), and the broadcaster renders each change once for every page: the same row in the
same state is the same HTML, but for the viewer's form token and vote. So the partial is kept per
row state (its id, its event number and when it last changed: every change moves both) and
language, with a slot where the form token goes, filled in per page, and left out of frames,
which go to everyone.
"""

import threading
from collections import OrderedDict

from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

from bots.registry import find_bot
from chat.dom import IDS

# A token's stand-in while the partial is rendered: `{% csrf_token %}` writes it into each form.
SLOT = "parleyformtokenslot"
TOKEN_INPUT = f'<input type="hidden" name="csrfmiddlewaretoken" value="{SLOT}">'
# Rooms' pages show their latest messages; a reply's states while it streams pass through and age out.
KEPT = 4096


class Kept:
    """The partials rendered last, by row state and vote, at most KEPT of them (threads share it)."""

    def __init__(self):
        self.html = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            html = self.html.get(key)
            if html is not None:
                self.html.move_to_end(key)
            return html

    def put(self, key, html):
        with self.lock:
            self.html[key] = html
            while len(self.html) > KEPT:
                self.html.popitem(last=False)


_kept = Kept()


# The row's columns a partial depends on, in the order _key takes them.
STATE = ("pk", "seq", "revision", "updated_at", "status", "bot", "role")


def _key(pk, seq, revision, updated_at, status, bot, role, mine):
    """What the partial shows depends on: the row as it stands, its bot's display name, the viewer's
    vote, and the language it is shown in."""
    found = find_bot(bot) if role == "assistant" else None
    return (pk, seq, revision, updated_at, status, found and found.name, mine, get_language())


def _rendered(message, mine):
    if message.pk is None:  # not a row yet: nothing to keep it by
        return _render(message, mine)
    key = _key(*(getattr(message, name) for name in STATE), mine)
    html = _kept.get(key)
    if html is None:
        html = _render(message, mine)
        _kept.put(key, html)
    return html


def _render(message, mine):
    return render_to_string("chat/_message.html", {"message": message, "csrf_token": SLOT, "my_votes": {message.pk: mine}})


def for_everyone(message):
    """The partial as frames carry it: no form token, no vote of anyone's."""
    return _rendered(message, "").replace(TOKEN_INPUT, "")


class Divider:
    """"New since your last visit", above the oldest shown message numbered past seen (the reader's
    position): the page's own, never kept with a partial."""

    def __init__(self, seen):
        self.seen = seen
        self.html = render_to_string("chat/_unread_divider.html", {"ids": IDS})

    def after(self, numbered):
        """The pk the divider follows in a page's list, newest first, of (pk, number); None if none is new."""
        new = [pk for pk, number in numbered if number > self.seen]
        return new[-1] if new else None


def for_page(room_key, token, votes_of, divider=None):
    """A room's recent messages, newest first, as one page shows them, and the id of the oldest shown:
    with its form token, its person's votes (votes_of(ids of finished replies) -> {id: "up" or
    "down"}) and the unread divider if any. Only the rows whose state has no kept partial are read whole."""
    from chat.models import Message

    read = Message.objects.recent(room_key, fields=(*STATE, "number"))
    states, numbers = [row[:-1] for row in read], [row[-1] for row in read]
    votes = votes_of([state[0] for state in states if state[-1] == "assistant" and state[4] == Message.Status.COMPLETE])
    kept = [_kept.get(_key(*state, votes.get(state[0], ""))) for state in states]
    missing = [state[0] for state, html in zip(states, kept) if html is None]
    rows = Message.objects.shown().with_asker().in_bulk(missing) if missing else {}
    first_new = divider.after([(state[0], number) for state, number in zip(states, numbers)]) if divider else None
    parts = []
    for state, html in zip(states, kept):
        if html is None:
            row = rows.get(state[0])
            if row is None:
                continue  # removed since the states were read
            html = _rendered(row, votes.get(row.pk, ""))  # kept by the row as read now
        parts.append(html)
        if state[0] == first_new:
            parts.append(divider.html)
    return _filled(parts, token), states[-1][0] if states else None


def of_rows(messages, token, votes_of, current=None, divider=None):
    """Messages read whole (scroll back, a page around one), newest first, as one page shows them;
    current: the id of the one the page is opened at, marked aria-current; the unread divider if any."""
    votes = votes_of([message.pk for message in messages if message.takes_feedback])
    first_new = divider.after([(message.pk, message.number) for message in messages]) if divider else None
    parts = []
    for message in messages:
        html = _rendered(message, votes.get(message.pk, ""))
        if message.pk == current:  # the page's own mark, never kept: the partial opens with its id
            opening = f'id="{message.dom_id}"'
            html = html.replace(opening, f'{opening} aria-current="true"', 1)
        parts.append(html)
        if message.pk == first_new:
            parts.append(divider.html)
    return _filled(parts, token)


def _filled(parts, token):
    filled = TOKEN_INPUT.replace(SLOT, escape(token))
    return mark_safe("".join(parts).replace(TOKEN_INPUT, filled))  # noqa: S308 - rendered by the template, escaped there
