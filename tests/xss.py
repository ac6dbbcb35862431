"""Hostile markup, and a checker that finds anything in HTML a browser would run or load."""

from html.parser import HTMLParser

from tests.rooms import parse_frames

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    "![x](https://example.com/x.png\" onerror=\"alert(1))",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<style>body{display:none}</style>",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "<meta http-equiv=refresh content=\"0;url=https://evil.example\">",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<form action=https://evil.example><input name=q></form>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<base href=https://evil.example/>",
    "\"><script>alert(1)</script>",
    "'><img src=x onerror=alert(1)>",
    "</template><script>alert(1)</script>",
    "</turbo-stream><turbo-stream action=remove target=messages></turbo-stream>",
    "<turbo-stream action=\"update\" target=\"messages\"><template>owned</template></turbo-stream>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "<scr<script>ipt>alert(1)</script>",
    "<a href=\"&#106;avascript:alert(1)\">x</a>",
    "[x](&#106;avascript:alert(1))",
    "<video><source onerror=alert(1)></video>",
    "<input autofocus onfocus=alert(1)>",
    "<!--<script>alert(1)</script>-->",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
]

# Markup a message's partial may contain; everything else is someone else's.
ALLOWED_TAGS = {
    "div", "span", "p", "a", "strong", "em", "del", "code", "pre", "blockquote", "br", "hr", "ul", "ol",
    "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "time", "i",
    "form", "button", "input", "template", "turbo-stream",
    "turbo-frame",  # scroll back's lazy frame of older messages, last in the list
}
DANGEROUS_SCHEMES = ("javascript:", "data:", "vbscript:")


class Inspector(HTMLParser):
    """Collects every tag and attribute of an HTML fragment, as a browser would parse them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []
        self.turbo_streams = 0

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
        if tag == "turbo-stream":
            self.turbo_streams += 1
        for name, value in attrs:
            value = (value or "").strip().lower().replace("\t", "").replace("\n", "")
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"{tag}[{name}]")
            if name in {"href", "src", "action", "data", "xlink:href"} and value.startswith(DANGEROUS_SCHEMES):
                self.problems.append(f"{tag}[{name}={value[:30]}]")
        if tag == "form" and dict(attrs).get("action", "").startswith(("http:", "https:", "//")):
            self.problems.append("form posting off-site")


def executable_markup(html):
    """What in html could run, load or restyle something; an empty list when it is safe."""
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


def stream_count(html):
    """How many <turbo-stream> elements a browser would find in html."""
    inspector = Inspector()
    inspector.feed(html)
    return inspector.turbo_streams


def assert_inert_socket_text(texts):
    """Each text a room socket sent, as a whole: nothing in it could run, and every <turbo-stream>
    a browser would find in it is one of the frames the tests parse (none smuggled past them)."""
    for text in texts:
        assert executable_markup(text) == [], text
        assert stream_count(text) == len(parse_frames(text, presence=True)), text


def messages_html(page):
    """The #messages part of a room page."""
    return page[page.index('<div id="messages"'):page.index('<form id="new_message"')]
