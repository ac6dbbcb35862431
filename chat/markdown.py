"""Replies as HTML: Markdown rendered on the server, code highlighted, then sanitized, so no model
output ever runs as code in a page."""

import functools

import nh3
from django.utils.html import escape
from django.utils.translation import gettext, gettext_noop
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
# Only the classes Pygments uses survive; nothing else may style the page.
CLASSES = {"span": {name for name in STANDARD_TYPES.values() if name}}

# A table or a code block wider than its message scrolls sideways in a box of its own (a message
# cuts off what overflows it), which a keyboard must be able to reach (WCAG 2.1.1): each box is a
# tab stop. A table's is a group (not a landmark: a room holds many) named in the reader's
# language; frames are rendered in none, so the page's catalog names it there (data-i18n).
TABLE_NAME = gettext_noop("Table")
TABLE_BOX = '<div class="table" role="group" tabindex="0" data-i18n="aria-label" data-msgid="{}" aria-label="{}">'
UNNAMED_TABLE = TABLE_BOX.format(TABLE_NAME, TABLE_NAME)
# Put in after the sanitizer, which lets no model output set these: a model's "<" reaches here escaped.
BOXES = {
    "<table>": UNNAMED_TABLE + "<table>",
    "</table>": "</table></div>",
    "<pre><code>": '<div class="highlight"><pre class="code" tabindex="0"><code>',
    "</code></pre>": "</code></pre></div>",
}


def _highlight(code, language, attrs):
    """A fenced block in a known language, coloured by Pygments; others stay plain (escaped)."""
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes and wraps it itself
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


@functools.cache
def _parser():
    # Raw HTML in Markdown is shown as text, not passed through: the model does not write our markup.
    parser = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
    return parser.enable(["table", "strikethrough"])


def render_markdown(text):
    """Markdown to safe HTML: no scripts, handlers, styles, frames or javascript:/data: links."""
    html = _render(text)
    if (name := gettext(TABLE_NAME)) != TABLE_NAME:
        html = html.replace(UNNAMED_TABLE, TABLE_BOX.format(TABLE_NAME, escape(name)))
    return html


# Every view of a room renders its recent messages, whose texts no longer change: the process keeps
# the HTML of the texts it rendered last (a reply's growing text passes through and ages out).
RENDERED_KEPT = 2048


@functools.lru_cache(maxsize=RENDERED_KEPT)
def _render(text):
    html = nh3.clean(
        _parser().render(text),
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    for plain, boxed in BOXES.items():
        html = html.replace(plain, boxed)
    return html
