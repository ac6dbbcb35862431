"""Benchmark: what a growth frame costs the page that shows it, by how long the page's history is.

    ./parley bench-page [--messages 50,500] [--frames 300] [--rounds 3] [--before DIR]

One real Daphne (PostgreSQL) serves a room page to a real Chromium, signed in as a person who can
be @mentioned. The page is given a history of M messages (a third of the replies with a code block,
each with its time) and a reply streaming at the top, then F growth frames of that reply, one an
animation frame, as a socket brings them. Chromium's own counters (the DevTools protocol's
Performance metrics) give the main thread's busy time over the frames: per frame, everything the
page did for it (Turbo, parley.js, unread.js, style and layout). With --before DIR the page runs
that checkout's static/chat/ (scripts and styles) instead (the same server, the same page), the sides in turn each
round, in the other order every round.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley_bench_page")
ROOM = "PirateBot"
PASSWORD = "bench-lantern-5521"
# Chromium's main-thread seconds: all of it, then its parts (JavaScript, style, layout).
METRICS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration")
TYPES = {"js": "text/javascript", "css": "text/css"}
CODE = "Here it is:\n\n```python\nfor barrel in hold:\n    print(barrel)\n```\n\nAye."


def history(count):
    """count messages of the room, newest first, as frames carry them (no rows behind them)."""
    from chat.models import Message

    made = []
    for n in range(count, 0, -1):
        if n % 2:
            made.append(Message(id=n, pk=n, room=ROOM, role="user", author="Bo", content=f"Question {n}, @someone?",
                                number=n, seq=n))
        else:
            content = CODE if n % 6 == 0 else f"Answer {n}: the tide turns at dawn, and the ship sails with it."
            made.append(Message(id=n, pk=n, room=ROOM, bot=ROOM, role="assistant", status="complete", content=content,
                                number=n, seq=n, revision=2))
    return made


def measure(browser, url, scripts, count, frames_count):
    """Main-thread milliseconds a growth frame (each of METRICS), on a page showing count messages,
    with the scripts and styles of `scripts` (a static/chat directory; each side's go through the
    same route, so both are served alike)."""
    from chat.delivery import frames
    from chat.models import Message

    context = browser.new_context()
    page = context.new_page()
    def side(route):
        name = route.request.url.rsplit("/", 1)[1].split("?")[0]
        route.fulfill(path=str(scripts / name), content_type=TYPES[name.rsplit(".", 1)[1]])

    page.route("**/static/chat/*", side)
    page.goto(f"{url}/accounts/login/?next=/rooms/{ROOM}/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", PASSWORD)
    page.click("main [type=submit]")
    page.wait_for_url(f"{url}/rooms/{ROOM}/")
    top = count + 1
    streaming = Message(id=top, pk=top, room=ROOM, bot=ROOM, role="assistant", status="streaming", number=top, seq=top)
    render = "(html) => Turbo.renderStreamMessage(html)"
    settle = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    page.evaluate(render, frames.messages([streaming, *history(count)]))
    page.evaluate(settle)
    shown = page.evaluate("() => document.querySelectorAll('#messages > .message').length")
    if shown != count + 1:
        raise SystemExit(f"the page shows {shown} messages, not {count + 1}")
    words = [f"word{i} " for i in range(frames_count)]
    offsets = [sum(len(word) for word in words[:i]) for i in range(frames_count)]
    grows = [frames.grow(top, offset, word) for offset, word in zip(offsets, words, strict=True)]
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def busy():
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return [metrics[name] for name in METRICS]

    before = busy()
    # Each frame in a task of its own after the last one was drawn, as a socket's messages come (a
    # reply's ten a second are each drawn before the next arrives), not many drawn at once.
    page.evaluate("""async (grows) => {
        for (const frame of grows) {
            Turbo.renderStreamMessage(frame);
            await new Promise((done) => requestAnimationFrame(() => setTimeout(done)));
        }
    }""", grows)
    page.evaluate(settle)
    after = busy()
    length = page.evaluate(f"() => Number(document.getElementById('message_{top}_content').dataset.length)")
    if length != sum(len(word) for word in words):
        raise SystemExit(f"the reply grew to {length} characters, not {sum(len(word) for word in words)}")
    context.close()
    return [(a - b) * 1000 / frames_count for a, b in zip(after, before, strict=True)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", default="50,500", help="history lengths the page shows, comma-separated")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose static/chat/ (scripts, styles) the page runs in turn")
    args = parser.parse_args()

    from tests.bench_database import Side, prepare
    from tests.bench_servers import AS_PRODUCTION
    from tests.browser import CHROMIUM, FLAGS
    from tests.servers import Daphne

    try:
        prepare(Side(ROOT, DATABASE_URL))
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL
        sys.exit(f"start PostgreSQL (or set BENCH_DATABASE_URL) to run the benchmark: {exc}")
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    get_user_model().objects.create_user("ana", password=PASSWORD)
    # DEBUG serves static/ by plain names, which the page's route answers with a side's own files.
    server = Daphne({**AS_PRODUCTION, "DEBUG": "true", "DATABASE_URL": DATABASE_URL, "REDIS_URL": None, "LOG_LEVEL": "WARNING"})
    sides = [("this checkout", ROOT / "static" / "chat")]
    if args.before:
        sides.append((f"{args.before.resolve().name} (before)", args.before.resolve() / "static" / "chat"))
    counts = [int(n) for n in args.messages.split(",")]
    results = {(label, n): [] for label, _ in sides for n in counts}
    print(f"{args.frames} growth frames of one reply, main-thread ms a frame (all / script / style / layout), "
          f"{args.rounds} rounds", flush=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for round_ in range(1, args.rounds + 1):
                for label, scripts in (sides if round_ % 2 else sides[::-1]):
                    for n in counts:
                        figures = measure(browser, server.url, scripts, n, args.frames)
                        results[label, n].append(figures)
                        print(f"  round {round_}, {label:<24} {n:>5} messages: " + " / ".join(f"{v:6.3f}" for v in figures), flush=True)
            browser.close()
    finally:
        server.stop()
    print("medians (all / script / style / layout):")
    for n in counts:
        cells = {label: [statistics.median(figures[i] for figures in results[label, n]) for i in range(len(METRICS))]
                 for label, _ in sides}
        for label, values in cells.items():
            print(f"  {n:>5} messages, {label:<24} " + " / ".join(f"{v:6.3f}" for v in values))
        if len(sides) == 2:
            (now, _), (before, _) = sides
            print(f"  {n:>5} messages, now / before            " + " / ".join(
                f"{a / b:5.2f}x" if b else "    -" for a, b in zip(cells[now], cells[before], strict=True)))


if __name__ == "__main__":
    main()
