"""Does a bot speak only for itself? The embedded model in the Lounge, three people and two bots.

    ./parley bench-speakers [--before REF] [--exchanges 20] [--max-tokens 160]

A real Daphne of this checkout, on the embedded model and a SQLite file of its own, gets
`--exchanges` scripted messages from Ana, Ben and Cy in the Lounge, each calling BelleBot,
PirateBot or both; the bench counts the replies that contain another speaker's line (another
participant's name, perhaps in emphasis, then a colon), that open with their own label, and that
failed. `--before REF` measures a Daphne of that commit too (in a temporary git worktree), in
the same run, and prints the two side by side. The model is heavy: run one at a time.
"""

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEOPLE = ["Ana", "Ben", "Cy"]
BOTS = ["ChatBot", "BelleBot", "PirateBot"]
# The scripted exchanges, taken in turn by Ana, Ben and Cy.
SCRIPT = [
    "@BelleBot @PirateBot say hi in one line each",
    "@PirateBot what is your ship called?",
    "@BelleBot what do you make of Ben?",
    "@PirateBot @BelleBot introduce yourselves to Cy",
    "@BelleBot what should we eat tonight?",
    "@PirateBot tell Ana a joke",
    "@BelleBot @PirateBot what do you think of each other?",
    "@PirateBot where is the treasure buried?",
    "@BelleBot say goodnight to everyone",
    "@PirateBot @BelleBot one line each: your favourite drink",
    "@BelleBot Ben says hello, answer him",
    "@PirateBot what did Cy just say?",
    "@BelleBot @PirateBot who is in this room?",
    "@PirateBot sing us a short shanty",
    "@BelleBot give Ana some advice",
    "@PirateBot @BelleBot say bye in one line each",
    "@BelleBot what is the weather like down South?",
    "@PirateBot reply to Ben and Ana together",
    "@BelleBot @PirateBot greet the newcomer Dee",
    "@PirateBot what would you say to BelleBot?",
]
FRESH_DRAW = "wrote nothing of its own (attempt"
SPOKE_FOR_OTHERS = "The model wrote only other people's lines"


def label_pattern(names):
    """A line of one of names: the name (any case, perhaps in emphasis or after @), then a colon."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?<!\w)[*_@]*(?:{alternatives}|Guest(?: \d+)?)[*_]*[ \t]*:", re.IGNORECASE)


def others_line(bot, content):
    """Whether a reply of bot's contains a line of another participant's."""
    return bool(label_pattern([*PEOPLE, *(b for b in BOTS if b != bot)]).search(content))


def own_label(bot, content):
    return bool(re.match(rf"\s*[*_@]*{bot}[*_]*[ \t]*:", content, re.IGNORECASE))


def replies(database):
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT bot, content, status, error FROM chat_message WHERE room = 'Lounge' AND role = 'assistant' ORDER BY id"
        ).fetchall()


def converse(server, database, exchanges):
    """Post the scripted exchanges, each once the replies to the last have ended."""
    from tests.servers import Browser

    people = {name: Browser(server.url) for name in PEOPLE}
    for name, browser in people.items():
        status, _, body = browser.post_form("/rooms/Lounge/", "/profile", {"name": name, "next": "/rooms/Lounge/"})
        assert status in (302, 303), body
    expected = 0
    for index in range(exchanges):
        content = SCRIPT[index % len(SCRIPT)]
        browser = people[PEOPLE[index % len(PEOPLE)]]
        status, _, body = browser.post_form("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": content})
        assert status == 303, body
        expected += sum(f"@{bot}" in content for bot in BOTS)
        deadline = time.monotonic() + 300
        while True:
            rows = replies(database)
            if len(rows) == expected and all(status not in ("pending", "streaming") for _, _, status, _ in rows):
                break
            assert time.monotonic() < deadline, f"replies to {content!r} never ended: {rows[-2:]}"
            time.sleep(0.2)
        print(f"  {index + 1}/{exchanges}", file=sys.stderr, end="\r")


def measure(app_dir, workdir, name, exchanges, max_tokens):
    """One side: migrate a fresh SQLite file with app_dir's code, serve it, converse, count."""
    from tests.servers import Daphne

    database = Path(workdir) / f"{name}.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(app_dir), "REDIS_URL": None,
        "LLM_PROVIDER": None, "OPENAI_API_KEY": None, "REPLY_MAX_TOKENS": str(max_tokens), "LOG_LEVEL": "INFO",
        "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000", "DEBUG": "true",
    }
    process_env = {**os.environ, **{key: value for key, value in env.items() if value is not None}}
    for key in ("REDIS_URL", "LLM_PROVIDER", "OPENAI_API_KEY"):
        process_env.pop(key, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=app_dir, env=process_env, check=True)
    started = time.monotonic()
    server = Daphne(env, cwd=app_dir)
    try:
        converse(server, database, exchanges)
    finally:
        log = server.stop()
    rows = replies(database)
    complete = [(bot, content) for bot, content, status, _ in rows if status == "complete"]
    return {
        "replies": len(rows),
        "containing another speaker's line": sum(others_line(bot, content) for bot, content, _, _ in rows),
        "opening with their own label": sum(own_label(bot, content) for bot, content, _, _ in rows),
        "opening with another speaker's line": sum(
            bool(label_pattern([*PEOPLE, *(b for b in BOTS if b != bot)]).match(content.lstrip())) for bot, content, _, _ in rows
        ),
        "fresh draws (nothing of its own)": log.count(FRESH_DRAW),
        "failed": sum(status == "failed" for _, _, status, _ in rows),
        "failed: only other people's lines": sum(error.startswith(SPOKE_FOR_OTHERS) for _, _, _, error in rows),
        "mean characters of a complete reply": round(sum(len(c) for _, c in complete) / max(1, len(complete))),
        "seconds": round(time.monotonic() - started),
    }, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit (say, main) to measure too, in a temporary git worktree")
    parser.add_argument("--exchanges", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=160, help="REPLY_MAX_TOKENS of both servers")
    parser.add_argument("--show", action="store_true", help="print every reply")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-speakers-") as workdir:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"  # this process's own, unused
        import django

        django.setup()
        sides = [("after", ROOT, "this checkout")]
        if args.before:
            before = Path(workdir) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
            sides.insert(0, ("before", before, args.before))
        results = {}
        try:
            for name, app_dir, what in sides:
                print(f"{name}: {what}", file=sys.stderr)
                results[name], rows = measure(app_dir, workdir, name, args.exchanges, args.max_tokens)
                if args.show:
                    for bot, content, status, error in rows:
                        print(f"--- {name} {bot} [{status}] {error}\n{content}", file=sys.stderr)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    print(f"\n{args.exchanges} exchanges in the Lounge (Ana, Ben, Cy; BelleBot, PirateBot), embedded model, "
          f"REPLY_MAX_TOKENS={args.max_tokens}\n")
    names = list(results)
    print("| | " + " | ".join(f"{name} ({what})" for name, _, what in sides) + " |")
    print("|---|" + "---:|" * len(names))
    for key in results[names[-1]]:
        print(f"| {key} | " + " | ".join(str(results[name][key]) for name in names) + " |")


if __name__ == "__main__":
    main()
