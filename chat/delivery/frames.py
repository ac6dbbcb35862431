"""Turbo Stream frames for a room: rendered once per change, sent to every page as they are."""

from django.template.loader import render_to_string
from django.utils.html import escape

from chat import dom


def turbo_stream(action, target, html="", *, bare=False, **attributes):
    """One <turbo-stream> element, the only place a frame's markup is written.

    html=None sends no content (remove); bare puts html in the element itself, not in a template
    (the growth action reads its text there); attributes go on the element, `data_x` as `data-x`.
    """
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    content = "" if html is None else html if bare else f"<template>{html}</template>"
    return f'<turbo-stream action="{action}" target="{target}"{extra}>{content}</turbo-stream>'


def render_message(message):
    """The one partial for a message, as it stands."""
    return render_to_string("chat/_message.html", {"message": message})


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
    return turbo_stream("replace", message.feedback_dom_id, render_to_string("chat/_feedback.html", {"message": message}))


def presence(text):
    """Who is here, as a sentence ("Ana, Ben and 3 guests here")."""
    return turbo_stream("update", dom.IDS["presence"], escape(text))


def update(target, text=""):
    """Element target's content becomes text, escaped (a form's error sentence, cleared with "")."""
    return turbo_stream("update", target, escape(text))
