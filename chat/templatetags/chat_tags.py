"""Template filters for messages."""

from django import template
from django.utils.crypto import salted_hmac
from django.utils.safestring import mark_safe

from bots.registry import find_bot
from chat.markdown import render_markdown

register = template.Library()


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
