"""Dropped connections at full load: what resuming costs, and how much still arrives exactly.

    ./parley bench-drops [--pages 500] [--replies 2] [--tokens 350] [--rate 50] [--before DIR]

One real Daphne process (PostgreSQL, Redis channel layer) behind a proxy process (tests/drops.py)
that cuts every connection every 1 to 3 s, sometimes mid-frame. A client process holds P pages
(following parley.js: tests/resuming.py) over the three bot rooms and one room event follower a
room; each room streams R replies of T tokens at U tokens/s, one after another. Then the pages
have --settle seconds to be in step. Reported: cuts, reconnects, the catch-up's bytes per
reconnect, the time from a reconnect (and from the drop) to in step, and delivery: the share of
(page, reply) pairs that end with the reply's exact text and status. With --before DIR another
checkout (one that resumes by time) is measured too, in the same run, on a database of its own.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_servers import AS_PRODUCTION  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley_bench_drops")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ROOMS = ["ChatBot", "BelleBot", "PirateBot"]
ANCHOR = "Evil Martians 2026, repeated drops: AnyCable 100 %, Socket.IO (default) 84.6 %"


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- the client process: pages and followers ------------------------------------------------------


async def client(base, pages_per_room, followers):
    """P pages and the followers through the proxy at base; answers on stdout, commands on stdin."""
    from tests.resuming import Follower, Page

    pages = [Page(base, room) for room in ROOMS for _ in range(pages_per_room)]
    gate = asyncio.Semaphore(25)

    async def load(page):
        async with gate:
            await page.load()

    await asyncio.gather(*(load(page) for page in pages))
    followers = [Follower(base, room, secret, last) for room, secret, last in followers]
    tasks = [asyncio.create_task(c.run()) for c in (*pages, *followers)]
    say({"ready": len(pages)})
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    command = json.loads(await reader.readline())
    expected = {room: {int(pk): want for pk, want in replies.items()} for room, replies in command["expected"].items()}

    def page_has(page, pk):
        status, _, text, _ = page.shown.get(pk, [None, None, "", None])
        return [status, text.strip()] == expected[page.room][pk]

    def delivered():
        return (sum(page_has(p, pk) for p in pages for pk in expected[p.room]),
                sum(f.messages.get(pk) == want for f in followers for pk, want in expected[f.room].items()))

    started = time.monotonic()
    want = (sum(len(expected[p.room]) for p in pages), sum(len(expected[f.room]) for f in followers))
    while delivered() != want and time.monotonic() - started < command["settle"]:
        await asyncio.sleep(0.25)
    settled = time.monotonic() - started
    got = delivered()
    for c in (*pages, *followers):
        c.closed = True
    for task in tasks:
        task.cancel()
    say({
        "pages": len(pages), "pairs": want[0], "delivered": got[0], "follower_pairs": want[1], "followers_delivered": got[1],
        "settle_s": settled, "reconnects": sum(p.reconnects for p in pages), "repairs": sum(p.repairs for p in pages),
        "catch_up_bytes": [b for p in pages for b in p.catch_up_bytes], "in_step": [s for p in pages for s in p.in_step],
        "dark": [s for p in pages for s in p.dark], "follower_reconnects": sum(f.reconnects for f in followers),
        "faults": [fault for f in followers for fault in f.faults][:10],
        "attempts": sum(p.attempts for p in pages), "opened": sum(p.opened for p in pages),
        "failures": {name: sum(p.failures.get(name, 0) for p in pages) for name in {n for p in pages for n in p.failures}},
        "follower_failures": {str(n): sum(f.failures.get(n, 0) for f in followers) for n in {n for f in followers for n in f.failures}},
        "pages_behind": sum(not all(page_has(p, pk) for pk in expected[p.room]) for p in pages),
    })


def say(payload):
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


# --- the run ---------------------------------------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_env(upstream, side):
    return {
        **AS_PRODUCTION,
        "PYTHONPATH": str(side.app_dir), "DATABASE_URL": side.database_url, "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING", "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url, "OPENAI_MODEL": "scripted",
        "OPENAI_MAX_RETRIES": "0", "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000",
        "RATE_LIMIT_PER_ADDRESS": "100000", "ROOM_SOCKETS_PER_ADDRESS": "100000",
    }


def issue_keys(side):
    """One API key a room, and each room's last event number, in the side's database."""
    import psycopg

    from tests.bench_database import clear

    clear(side)
    env = {**os.environ, "DATABASE_URL": side.database_url, "PYTHONPATH": str(side.app_dir)}
    keys = []
    for room in ROOMS:
        secret = subprocess.run([sys.executable, "manage.py", "create_api_key", "--skip-checks", f"Follower {room}"],
                                cwd=side.app_dir, env=env, check=True, capture_output=True, text=True).stdout.strip()
        with psycopg.connect(side.database_url) as db:
            row = db.execute('SELECT last FROM chat_roomclock WHERE room = %s', [room]).fetchone()
        keys.append((room, secret, row[0] if row else 0))
    return keys


def run(label, side, args, upstream):
    """One side's run: server, proxy, client; the figures."""
    import redis

    from tests.servers import Browser, Daphne

    redis.Redis.from_url(REDIS_URL).flushdb()
    followers = issue_keys(side)
    upstream.reset()
    texts = [" ".join(f"{label[:3]}{n}w{i}" for i in range(args.tokens)) for n in range(len(ROOMS) * args.replies)]
    for text in texts:
        upstream.will(text=text, rate=args.rate)
    server = Daphne(server_env(upstream, side), cwd=side.app_dir)
    proxy = subprocess.Popen([sys.executable, str(ROOT / "tests" / "drops.py"), str(server.port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{json.loads(proxy.stdout.readline())['port']}"
    load = subprocess.Popen([sys.executable, __file__, "--client", base, str(args.pages // len(ROOMS)), json.dumps(followers)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert "ready" in json.loads(load.stdout.readline()), "the client did not start"
        cpu = cpu_seconds(server.process.pid), cpu_seconds(load.pid), cpu_seconds(proxy.pid)
        began = time.monotonic()
        for n in range(args.replies):
            posts = [threading.Thread(target=Browser(server.url).post_form,
                                      args=(f"/rooms/{room}/", f"/rooms/{room}/messages", {"content": f"Tale {n}"})) for room in ROOMS]
            for post in posts:
                post.start()
            for post in posts:
                post.join()
        rows = wait_for_replies(side, len(texts), timeout=args.replies * args.tokens / args.rate + 120)
        streamed = time.monotonic() - began
        expected = {room: {pk: [status, content] for pk, r, status, content in rows if r == room} for room in ROOMS}
        load.stdin.write(json.dumps({"expected": expected, "settle": args.settle}) + "\n")
        load.stdin.flush()
        result = json.loads(load.stdout.readline())
        used = cpu_seconds(server.process.pid) - cpu[0], cpu_seconds(load.pid) - cpu[1], cpu_seconds(proxy.pid) - cpu[2]
    finally:
        load.kill()
        proxy.stdin.close()
        cuts = json.loads(proxy.stdout.readline() or "{}")
        proxy.wait()
        server.stop()
    exact = sorted(content for *_, content in rows) == sorted(texts)
    return {"label": label, **result, **cuts, "streamed_s": streamed, "rows_exact": exact,
            "cpu_server": used[0], "cpu_client": used[1], "cpu_proxy": used[2]}


def wait_for_replies(side, count, timeout):
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(side.database_url) as db:
            rows = db.execute("SELECT id, room, status, content FROM chat_message WHERE role = 'assistant' ORDER BY id").fetchall()
        if len(rows) == count and all(status not in {"pending", "streaming"} for _, _, status, _ in rows):
            return rows
        time.sleep(0.5)
    raise SystemExit(f"the replies did not end within {timeout:.0f} s")


def table(runs):
    rows = [
        ("pages / followers", lambda r: f"{r['pages']} / {len(ROOMS)}"),
        ("connections cut (mid-frame)", lambda r: f"{r['cuts']:,} ({r['mid_frame']:,})"),
        ("sockets tried / opened", lambda r: f"{r['attempts']:,} / {r['opened']:,}"),
        ("page reconnects (follower)", lambda r: f"{r['reconnects']:,} ({r['follower_reconnects']:,})"),
        ("catch-up bytes per reconnect, mean / p50", lambda r: f"{statistics.fmean(r['catch_up_bytes'] or [0]):,.0f} / {percentile(r['catch_up_bytes'], 0.5):,.0f}"),
        ("reconnect to in step p50 / p99", lambda r: f"{percentile(r['in_step'], 0.5) * 1000:.0f} / {percentile(r['in_step'], 0.99) * 1000:.0f} ms"),
        ("drop to in step p50 / p99", lambda r: f"{percentile(r['dark'], 0.5) * 1000:.0f} / {percentile(r['dark'], 0.99) * 1000:.0f} ms"),
        ("gap repairs", lambda r: f"{r['repairs']:,}"),
        ("delivered exactly: pages", lambda r: f"{100 * r['delivered'] / r['pairs']:.1f} % of {r['pairs']:,}"),
        ("delivered exactly: followers", lambda r: f"{100 * r['followers_delivered'] / r['follower_pairs']:.1f} %"),
        ("pages not in step after settle", lambda r: f"{r['pages_behind']} (settle {r['settle_s']:.1f} s)"),
        ("event faults (followers)", lambda r: str(len(r["faults"]))),
        ("CPU s: server / client / proxy", lambda r: f"{r['cpu_server']:.0f} / {r['cpu_client']:.0f} / {r['cpu_proxy']:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{r['label']:>24}" for r in runs)]
    lines += [f"{name:<{width}}  " + "  ".join(f"{show(r):>24}" for r in runs) for name, show in rows]
    return "\n".join(lines + [f"anchor: {ANCHOR}"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--replies", type=int, default=2, help="replies per room, one after another")
    parser.add_argument("--tokens", type=int, default=350)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--settle", type=float, default=30, help="seconds the pages get to be in step after the replies")
    parser.add_argument("--before", type=Path, help="another checkout of Parley, measured too in the same run")
    args = parser.parse_args()

    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="project.settings")
    from tests.bench_database import Side, prepare
    from tests.services import main as services_answer
    from tests.upstream import ScriptedUpstream

    if services_answer(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", REDIS_URL):
        sys.exit("start PostgreSQL and Redis (or set BENCH_DATABASE_URL, BENCH_REDIS_URL) to run the benchmark")
    sides = [("this checkout", Side(ROOT, DATABASE_URL))]
    if args.before:
        sides.append((f"{args.before.resolve().name} (before)", Side(args.before.resolve(), DATABASE_URL + "_before")))
    for _, side in sides:
        prepare(side)
    upstream = ScriptedUpstream().start()
    print(f"{args.pages} pages over {len(ROOMS)} rooms, {args.replies} replies a room of {args.tokens} tokens at "
          f"{args.rate:g}/s, every connection cut every 1-3 s", flush=True)
    runs = []
    for label, side in sides:
        runs.append(result := run(label, side, args, upstream))
        print(f"  {label}: {100 * result['delivered'] / result['pairs']:.1f} % delivered, rows exact: {result['rows_exact']}", flush=True)
    upstream.stop()
    print("\n" + table(runs))
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "bench-drops.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1, default=str))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])))
    else:
        main()
