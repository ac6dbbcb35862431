"""Template filters for messages and links, and the tag that names a page's inline blocks to its security policy."""

import datetime
import functools
import json

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_noop

from bots.registry import find_bot
from chat import wording
from chat.markdown import render_markdown
from chat.web import csp

register = template.Library()


@register.filter
def url_of(key, name):
    """`{{ room.key|url_of:"chat:room" }}`: what `{% url name key %}` gives, reversed once per key: the lobby
    and every page's switcher link each room the person may enter (a reverse is about 30 µs)."""
    return _reversed(get_urlconf(), get_script_prefix(), name, key)


@functools.lru_cache(maxsize=10_000)
def _reversed(urlconf, prefix, name, key):
    return reverse(name, urlconf=urlconf, args=[key])


@register.filter
def under_a_minute_ago(moment):
    """Whether moment was less than a minute ago: "just now", where timesince would say "0 minutes"."""
    return moment is not None and timezone.now() - moment < datetime.timedelta(minutes=1)


@register.filter
def markdown(text):
    """Render a reply's Markdown as sanitized HTML."""
    return mark_safe(render_markdown(text))  # noqa: S308 - nh3 has sanitized it


@register.filter
def bot_name(key):
    """A bot's display name from its key."""
    bot = find_bot(key)
    return bot.name if bot else key


@register.filter
def vote_on(my_votes, pk):
    """The page's person's vote on reply pk ("up", "down"), or "" (frames rendered for everyone have none)."""
    return (my_votes or {}).get(pk, "")


@register.filter
def author_tag(sender):
    """Who sent a message, as every page may see it: a keyed hash of their sender tag (the tag
    itself keys their votes and mutes, and holds an account's primary key)."""
    return salted_hmac("parley.author", sender).hexdigest()[:16] if sender else ""


@register.filter
def mention_list(bots):
    """The bots as the mentions that call them ("@ChatBot, @PirateBot"): keys, in no language."""
    return ", ".join(f"@{bot.key}" for bot in bots)


#: What the typing dots of a reply in each active status say to a screen reader.
STATUS_LABELS = {"pending": gettext_noop("waiting to reply"), "streaming": gettext_noop("replying")}


@register.filter
def status_label(status):
    """The words for a reply's status, as a `data-i18n` attribute's text: translated, with its message id."""
    msgid = STATUS_LABELS.get(status, status)
    return format_html('aria-label="{}" data-i18n="aria-label" data-msgid="{}"', gettext(msgid), msgid)


@register.filter
def sentence_source(text):
    """How a page's catalog translates a sentence stored in English on a row (a reply's error) in a
    frame rendered for everyone: its message id and parts (chat.wording), as `data-i18n` attributes."""
    msgid, parts = wording.parse(text)
    return format_html('data-i18n="text" data-msgid="{}" data-i18n-args="{}"', msgid, json.dumps(parts))


@register.filter
def sentence(text):
    """A sentence stored in English on a row, in the active language."""
    return wording.translated(text)


class InlineNode(template.Node):
    def __init__(self, kind, nodelist):
        self.kind, self.nodelist = kind, nodelist

    def render(self, context):
        text = self.nodelist.render(context)
        csp.allow_inline(context["request"], self.kind, text)
        return text


@register.tag
def inline(parser, token):
    """`<script type="importmap">{% inline "script" %}…{% endinline %}</script>`: the block's text, which
    the page's Content-Security-Policy allows by its hash (so nothing else inline runs)."""
    bits = token.split_contents()
    if len(bits) != 2 or bits[1].strip("\"'") not in csp.KINDS:
        raise template.TemplateSyntaxError('{% inline %} takes "script" or "style".')
    nodelist = parser.parse(("endinline",))
    parser.delete_first_token()
    return InlineNode(bits[1].strip("\"'"), nodelist)
