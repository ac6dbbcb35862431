"""Turbo Stream frames for a room: rendered once per change, sent to every page as they are.

They are rendered in no person's language (English), and each sentence in them says what it is for
the page's own catalog to show it in the page's language (`data-i18n`, `data-lines`: parley.js).
"""

import hashlib
import json

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape

from chat import dom
from chat.delivery import partials


def turbo_stream(action, target, html="", *, bare=False, **attributes):
    """One <turbo-stream> element, the only place a frame's markup is written.

    html=None sends no content (remove); bare puts html in the element itself, not in a template
    (the growth action reads its text there); attributes go on the element, `data_x` as `data-x`.
    """
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    content = "" if html is None else html if bare else f"<template>{html}</template>"
    return f'<turbo-stream action="{action}" target="{target}"{extra}>{content}</turbo-stream>'


def render_message(message):
    """The one partial for a message, as it stands, in no person's language (rendered once per state
    of its row: chat.delivery.partials)."""
    with translation.override(None):
        return partials.for_everyone(message)


def _neutral(template_name, context):
    """A partial in no person's language: its sentences as their message ids, whichever language
    the request or task that changed the row had (the page's catalog translates them)."""
    with translation.override(None):
        return render_to_string(template_name, context)


def prepend(message):
    """A new message goes on top of #messages (shown at the bottom by column-reverse)."""
    return turbo_stream("prepend", dom.IDS["messages"], render_message(message))


def messages(newest_first):
    """The room's whole list anew, for a page too far behind to catch up message by message."""
    return turbo_stream("update", dom.IDS["messages"], "".join(render_message(message) for message in newest_first))


def replace(message):
    """A message's status changed or it finished: swap in the whole partial."""
    return turbo_stream("replace", message.dom_id, render_message(message))


def current(message, otherwise=replace):
    """message as a page must now show it: gone if a moderator removed it, else otherwise(message)."""
    return remove(message) if message.is_removed else otherwise(message)


def grow(message_id, offset, text):
    """Streamed text: Parley's own `grow` action appends only what is new; its offset `o` lets a
    page drop repeats and spot gaps (static/chat/parley.js).

    Sent to every page ten times a second, so it carries nothing more: no template (the escaped
    text is the element's own content) and a one-letter attribute: 78 bytes of markup for message
    13 at offset 42, where Turbo's own `append` with a template and `data-offset` took 111.
    """
    return turbo_stream("grow", dom.content(message_id), escape(text), bare=True, o=offset)


def remove(message):
    """A deleted message, or one a moderator removed, leaves every page."""
    return turbo_stream("remove", message.dom_id, None)


def synced(after):
    """Marks the room's event number a page is in step with, for catch-up on its next reconnect."""
    html = render_to_string("chat/_synced.html", {"after": after, "ids": dom.IDS})
    return turbo_stream("replace", dom.IDS["synced"], html.strip())


def feedback(message):
    """A reply's vote counts changed: only its feedback element is replaced, not the whole message."""
    return turbo_stream("replace", message.feedback_dom_id, _neutral("chat/_feedback.html", {"message": message}))


def presence(lines):
    """Who is here, as a sentence ("Ana, Ben and 3 guests here") in each language, {code: line}: the
    page shows the line of its own language (static/chat/parley.js), English without one."""
    shown = lines.get("en") or next(iter(lines.values()))
    return turbo_stream("update", dom.IDS["presence"], f"<span data-lines=\"{escape(json.dumps(lines))}\">{escape(shown)}</span>")


def update(target, text=""):
    """Element target's content becomes text, escaped (a form's error sentence, cleared with "")."""
    return turbo_stream("update", target, escape(text))


def heading_mark(room):
    """A short mark of the room's title and topic: the page keeps the one it shows and sends it back
    when it reconnects, and gets the heading again only if the room's differs (chat.delivery.consumers)."""
    return hashlib.blake2s(f"{room.title}\n{room.topic}".encode(), digest_size=6).hexdigest()


def heading(room, fields=("title", "topic")):
    """The room's title (its heading, the switcher's link to it, the window's title) and topic (under
    the heading) as they now are, those of fields, and the page's mark of them."""
    parts = []
    if "title" in fields:
        # The window's title as templates/chat/room.html writes it.
        parts += [update(dom.IDS["title"], room.title), update(dom.IDS["nav_room"], room.title),
                  update(dom.IDS["page_title"], f"{room.title} · Parley")]
    if "topic" in fields:
        parts.append(update(dom.IDS["topic"], room.topic))
    mark = render_to_string("chat/_heading.html", {"mark": heading_mark(room), "ids": dom.IDS}).strip()
    return "".join(parts) + turbo_stream("replace", dom.IDS["heading"], mark)
