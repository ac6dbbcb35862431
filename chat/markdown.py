"""Replies as HTML: Markdown rendered on the server, code highlighted, then sanitized, so no model
output ever runs as code in a page."""

import functools

import nh3
from django.utils.html import escape
from django.utils.translation import gettext
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
# Only the classes Pygments and the code block frame use survive; nothing else may style the page.
CLASSES = {"span": {name for name in STANDARD_TYPES.values() if name}, "div": {"highlight", "table"}, "pre": {"code"}}


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


# Every view of a room renders its recent messages, whose texts no longer change: the process keeps
# the HTML of the texts it rendered last (a reply's growing text passes through and ages out).
RENDERED_KEPT = 2048


# A table or a code block wider than its message scrolls sideways in a box of its own, which a
# keyboard must be able to reach (WCAG 2.1.1): each box is a tab stop, and a table's is a region
# named in the reader's language (frames are rendered in none: the page's catalog says it, data-i18n).
TABLE_BOX = '<div class="table" role="region" tabindex="0" data-i18n="aria-label" aria-label="{}">'
SCROLLS = {'<div class="table">': TABLE_BOX.format("Table"), '<pre class="code">': '<pre class="code" tabindex="0">'}


def render_markdown(text):
    """Markdown to safe HTML: no scripts, handlers, styles, frames or javascript:/data: links."""
    html = _render(text)
    label = gettext("Table")
    if label != "Table":  # a model's text never holds the box's tag: its "<" reaches here escaped
        html = html.replace(TABLE_BOX.format("Table"), TABLE_BOX.format(escape(label)))
    return html


@functools.lru_cache(maxsize=RENDERED_KEPT)
def _render(text):
    html = _parser().render(text)
    html = html.replace("<pre><code", '<div class="highlight"><pre class="code"><code').replace("</code></pre>", "</code></pre></div>")
    # A table scrolls sideways in a box of its own, keeping its table semantics (a message cuts off what overflows it).
    html = html.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")
    html = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    # After the sanitizer, which lets no model output set these: its text reaches here escaped.
    for box, focusable in SCROLLS.items():
        html = html.replace(box, focusable)
    return html
