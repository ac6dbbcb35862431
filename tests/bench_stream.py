"""The streaming benchmark: Parley's hot path against the demo's design, and fan-out capacity.

    ./parley bench-stream [--rooms 20] [--subscribers 25] [--tokens 400] [--rate 50]

One real Daphne process (Redis channel layer, PostgreSQL), the scripted upstream, and a load
client process holding R x S sockets. Part 1 streams a reply of T tokens at U tokens/s in every
room at once, first with Parley as it ships, then with the demo's design, and compares them.
Part 2 offers ever more frames/s to the same sockets, from another process through the channel
layer as a second server would, and finds the most one process sustains with p99 under 100 ms,
with Parley's fan-out and with one channel per socket. Writes artifacts/bench-stream.json and
docs/benchmark-latency.svg.
"""

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import threading
import time
from bisect import bisect_left
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley_bench_stream")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="project.settings")

WORDS = "the ship sails at dawn with a hold full of rum and a map that nobody can read twice".split()
P99_TARGET = 0.100  # seconds: the bar for a sustained frame rate
PROBE_SECONDS = 4.0


def tokens(count):
    """The reply every room gets: word-sized tokens, as a model streams them."""
    return [("" if i == 0 else " ") + WORDS[i % len(WORDS)] + ("." if i % 12 == 11 else "") for i in range(count)]


def percentile(ordered, share):
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- processes -----------------------------------------------------------------------------------


def prepare_database():
    """A fresh benchmark database, migrated."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def server_env(design, rooms, upstream, app_dir=ROOT, **extra):
    env = {
        "PYTHONPATH": str(app_dir),
        "BENCH_DESIGN": design, "BENCH_ROOMS": str(rooms), "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL,
        "DEBUG": "false", "SECRET_KEY": "benchmark", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false", "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url, "OPENAI_MODEL": "scripted",
        "MAX_STREAMING_REPLIES": str(rooms), "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000",
    }
    env.update(extra)
    return env


class Client:
    """The load client process (tests/bench_client.py)."""

    def __init__(self, server, rooms, per_room):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "bench_client.py"), server.ws_url, ",".join(rooms), str(per_room)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        ready = self.read()
        if ready["ready"] != len(rooms) * per_room:
            raise RuntimeError(f"only {ready['ready']} sockets opened: {ready['failed']}")

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the load client died")
        return json.loads(line)

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self):
        self.process.stdin.close()
        self.process.wait(10)


def cpu_seconds(pid):
    """User + system CPU of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def row_writes():
    """Rows inserted and updated in the message table so far (PostgreSQL's own counters)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'chat_message'")
        inserted, updated = cursor.fetchone()
    connection.close()
    return inserted, updated


def clean_slate():
    import redis
    from django.db import connection

    from chat.models import Message

    Message.objects.all().delete()
    connection.close()
    redis.Redis.from_url(REDIS_URL).flushdb()


# --- part 1: replies --------------------------------------------------------------------------------


def run_replies(design, args, upstream, rooms, app_dir=ROOT):
    """Every room gets one reply of T tokens at U tokens/s at once; what did it cost and how late was it?"""
    from chat.delivery.frames import render_message
    from chat.models import Message
    from tests.servers import Browser, Daphne

    clean_slate()
    flush = {"demo": {"REPLY_FLUSH_INTERVAL": "0"}}.get(design, {})
    server = Daphne(server_env(design, len(rooms), upstream, app_dir, **flush), app="tests.bench_asgi:application", cwd=app_dir)
    writes_before = row_writes()
    upstream.reset()
    script = tokens(args.tokens)
    for _ in rooms:
        upstream.will(tokens=script, rate=args.rate)
    try:
        client = Client(server, rooms, args.subscribers)
        client.ask(cmd="reply")
        cpu_before = cpu_seconds(server.process.pid)

        def post(room):
            Browser(server.url).post_form(f"/rooms/{room}/", f"/rooms/{room}/messages", {"content": f"Tell {room} a tale"})

        posters = [threading.Thread(target=post, args=(room,)) for room in rooms]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
        seconds = args.tokens / args.rate
        report = client.ask(cmd="collect", timeout=seconds * 20 + 60)["subscribers"]
        cpu = cpu_seconds(server.process.pid) - cpu_before
        memory = peak_memory_mib(server.process.pid)
        client.close()
    finally:
        server.stop()
    time.sleep(1.0)  # the server's database sessions report their counters as they end
    inserted, updated = (after - before for after, before in zip(row_writes(), writes_before))

    replies = {m.bot: m for m in Message.objects.filter(role="assistant")}
    rendered = {room: len(render_message(replies[room]).encode()) for room in replies}
    sent = {}
    for exchange in upstream.exchanges:
        room = exchange.messages[0]["content"].removeprefix("You are ").rstrip(".")
        sent[room] = [at for at, _ in exchange.sent]
    ends, length = [], 0
    for token in script:
        length += len(token)
        ends.append(length)
    offset = len(script[0]) - len(script[0].lstrip())  # shown text is stripped

    latencies, mismatched = [], []
    for subscriber in report:
        reply = replies.get(subscriber["room"])
        if reply is None or subscriber["status"] != "complete" or subscriber["text"] != reply.content.strip():
            mismatched.append(subscriber["room"])
            continue
        times = [at for at, _ in subscriber["progress"]]
        shown = [n for _, n in subscriber["progress"]]
        for index, end in enumerate(ends):
            at = bisect_left(shown, end - offset)
            if at < len(times) and index < len(sent[subscriber["room"]]):
                latencies.append(times[at] - sent[subscriber["room"]][index])
    latencies.sort()
    durations = [stamps[-1] - stamps[0] for stamps in sent.values() if stamps]
    count = len(report)
    return {
        "design": design,
        "replies": len(replies),
        "complete": sum(m.status == "complete" for m in replies.values()),
        "latency_p50_ms": percentile(latencies, 0.50) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        "latency_max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        "frames_per_subscriber": sum(s["reply_frames"] for s in report) / count,
        "bytes_per_subscriber": sum(s["reply_bytes"] for s in report) / count,
        "rendered_bytes": sum(rendered.values()) / max(1, len(rendered)),
        # The reply's insert plus every update of the table, per reply (the user's message is the other insert).
        "row_writes_per_reply": (inserted - len(replies) + updated) / max(1, len(replies)),
        "reply_seconds": sum(durations) / max(1, len(durations)),
        "server_cpu_seconds": cpu,
        "server_peak_mib": memory,
        "subscribers": count,
        "texts_equal_rows": count - len(mismatched),
        "latencies": latencies[:: max(1, len(latencies) // 5000)],
    }


# --- part 2: capacity -------------------------------------------------------------------------------


def layer_type(app_dir):
    """The layer message type the served checkout's fan-out reads: `room.frame` since the fan-out
    moved to chat/delivery/, `turbo.stream` before (for measuring an older checkout with --before)."""
    return "room.frame" if (app_dir / "chat" / "delivery" / "fanout.py").exists() else "turbo.stream"


async def offer(rooms, frames_per_second, per_room, seconds, app_dir=ROOT):
    """Send timestamped growth frames to the rooms' groups at a steady pace, as another process would."""
    from channels.layers import channel_layers, get_channel_layer

    from bots.registry import Bot
    from chat.delivery.frames import grow

    channel_layers.backends.clear()  # a channels-redis layer belongs to one event loop: a new one per step
    layer, kind = get_channel_layer(), layer_type(app_dir)
    groups = [Bot(key=room, name=room, description="", system_prompt="").group for room in rooms]
    per_second = frames_per_second / per_room  # each group message reaches per_room sockets
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    while (elapsed := loop.time() - start) < seconds:
        due = int(elapsed * per_second) + 1
        while sent < due:
            group = groups[sent % len(groups)]
            frame = grow(0, sent, f"{time.monotonic():.6f}")
            await layer.group_send(group, {"type": kind, "group": group, "frame": frame})
            sent += 1
        await asyncio.sleep(0.002)
    return sent


def probe(server, client, rooms, rate, per_room, app_dir=ROOT):
    """Offer `rate` frames/s for PROBE_SECONDS; what arrived, how late, at what CPU cost."""
    client.process.stdin.write(json.dumps({"cmd": "probe", "seconds": PROBE_SECONDS + 1.5}) + "\n")
    client.process.stdin.flush()
    client.read()
    cpu_before, client_before = cpu_seconds(server.process.pid), cpu_seconds(client.process.pid)
    sent = asyncio.run(offer(rooms, rate, per_room, PROBE_SECONDS, app_dir))
    result = client.read()
    window = PROBE_SECONDS + 1.5
    expected = sent * per_room
    step = {
        "offered": rate, "delivered_per_s": result["received"] / PROBE_SECONDS,
        "lost": expected - result["received"], "p50_ms": (result["p50"] or 0) * 1000,
        "p99_ms": (result["p99"] or float("inf")) * 1000,
        "server_cpu_per_s": (cpu_seconds(server.process.pid) - cpu_before) / window,
        "client_cpu_per_s": (cpu_seconds(client.process.pid) - client_before) / window,
    }
    step["sustained"] = step["p99_ms"] < P99_TARGET * 1000 and result["received"] >= expected
    return step


def run_capacity(design, args, upstream, rooms, ramp, app_dir=ROOT):
    """Raise the offered frames/s step by step until p99 passes 100 ms or frames go missing."""
    from tests.servers import Daphne

    clean_slate()
    server = Daphne(server_env(design, len(rooms), upstream, app_dir), app="tests.bench_asgi:application", cwd=app_dir)
    steps = []
    try:
        client = Client(server, rooms, args.subscribers)
        for rate in ramp:
            # This machine is shared: a step fails only when a second try fails as well.
            step = probe(server, client, rooms, rate, args.subscribers, app_dir)
            if not step["sustained"]:
                step = probe(server, client, rooms, rate, args.subscribers, app_dir)
            steps.append(step)
            print(f"  {design:>10}: {rate:>6} frames/s offered, p50 {step['p50_ms']:6.1f} ms, "
                  f"p99 {step['p99_ms']:7.1f} ms, lost {step['lost']}, server CPU {step['server_cpu_per_s']:.2f}/s, "
                  f"client CPU {step['client_cpu_per_s']:.2f}/s{'' if step['sustained'] else '  <- not sustained'}",
                  flush=True)
            if not step["sustained"]:
                break
        client.close()
    finally:
        server.stop()
    sustained = [s["offered"] for s in steps if s["sustained"]]
    return {"design": design, "steps": steps, "max_sustained": max(sustained) if sustained else 0}


# --- report -----------------------------------------------------------------------------------------


def compare(name, before, parley, fanout):
    """Parley as checked out at --before beside Parley now, measured in the same run."""
    rows = [("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"), ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
            ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
            ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
            ("row writes per reply", "row_writes_per_reply", "{:.1f}"), ("server CPU (s)", "server_cpu_seconds", "{:.1f}"),
            ("server peak memory (MiB)", "server_peak_mib", "{:.0f}")]
    lines = [f"| | {name} (before) | now | now / before |", "|---|---:|---:|---:|"]
    for label, key, form in rows:
        old, new = before["parley"][key], parley[key]
        lines.append(f"| {label} | {form.format(old)} | {form.format(new)} | {new / old if old else float('nan'):.2f}x |")
    if "fanout" in before:
        old, new = before["fanout"]["max_sustained"], fanout["max_sustained"]
        lines.append(f"| fan-out frames/s with p99 < 100 ms | {old:,} | {new:,} | {new / max(1, old):.2f}x |")
    return "\n".join(lines)


def report(args, parley, demo, fanout, per_socket, tuned, flush):
    rows = [
        ("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"),
        ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
        ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
        ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
        ("final rendered message (bytes)", "rendered_bytes", "{:,.0f}"),
        ("row writes per reply", "row_writes_per_reply", "{:.1f}"),
        ("reply duration (s)", "reply_seconds", "{:.2f}"),
        ("server CPU (s)", "server_cpu_seconds", "{:.1f}"),
        ("server peak memory (MiB)", "server_peak_mib", "{:.0f}"),
    ]
    lines = [
        f"R={args.rooms} rooms x S={args.subscribers} subscribers ({args.rooms * args.subscribers} sockets), "
        f"T={args.tokens} tokens at U={args.rate}/s, flush interval {flush * 1000:.0f} ms; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        "| | Parley | demo's design | demo / Parley |",
        "|---|---:|---:|---:|",
    ]
    for label, key, form in rows:
        ratio = demo[key] / parley[key] if parley[key] else float("nan")
        lines.append(f"| {label} | {form.format(parley[key])} | {form.format(demo[key])} | {ratio:.1f}x |")
    lines.append(f"| subscribers whose final text equals the row | {parley['texts_equal_rows']}/{parley['subscribers']} "
                 f"| {demo['texts_equal_rows']}/{demo['subscribers']} | |")
    lines += [
        "",
        "| fan-out | most frames/s with p99 < 100 ms |",
        "|---|---:|",
        f"| Parley: one subscription per room per process | {fanout['max_sustained']:,} |",
        f"| one channel per socket (Channels' usual consumer) | {per_socket['max_sustained']:,} |",
        f"| one channel per socket, without the per-message database hop | {tuned['max_sustained']:,} |",
        f"| Parley / usual | {fanout['max_sustained'] / max(1, per_socket['max_sustained']):.1f}x |",
        f"| Parley / without the hop | {fanout['max_sustained'] / max(1, tuned['max_sustained']):.1f}x |",
    ]
    checks = [
        ("p99 added latency <= flush interval + 50 ms", parley["latency_p99_ms"] <= flush * 1000 + 50),
        ("bytes per subscriber <= 4 x final rendered message",
         parley["bytes_per_subscriber"] <= 4 * parley["rendered_bytes"]),
        ("row writes per reply <= duration / flush interval + 3",
         parley["row_writes_per_reply"] <= parley["reply_seconds"] / flush + 3),
        ("10x fewer bytes than the demo's design", demo["bytes_per_subscriber"] >= 10 * parley["bytes_per_subscriber"]),
        ("10x fewer row writes than the demo's design",
         demo["row_writes_per_reply"] >= 10 * parley["row_writes_per_reply"]),
        (">= 10,000 frames/s with p99 < 100 ms", fanout["max_sustained"] >= 10_000),
        (">= 3x what one channel per socket sustains", fanout["max_sustained"] >= 3 * per_socket["max_sustained"]),
        ("every subscriber's final text equals its row",
         parley["texts_equal_rows"] == parley["subscribers"] and demo["texts_equal_rows"] == demo["subscribers"]),
    ]
    lines.append("")
    lines += [f"- [{'x' if ok else ' '}] {label}" for label, ok in checks]
    return "\n".join(lines), all(ok for _, ok in checks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=25)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--skip-capacity", action="store_true", help="part 1 only")
    parser.add_argument("--before", type=Path, help="another checkout of Parley (a worktree of an older commit): "
                        "Parley's part 1 and its fan-out capacity are measured on it too, in the same run")
    args = parser.parse_args()

    import django

    from tests.services import main as services_answer

    if services_answer(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", REDIS_URL):
        sys.exit("start PostgreSQL and Redis (or set BENCH_DATABASE_URL, BENCH_REDIS_URL) to run the benchmark")
    prepare_database()
    django.setup()
    from django.conf import settings

    from tests.bench_asgi import room_key
    from tests.bench_plot import latency_svg
    from tests.upstream import ScriptedUpstream

    rooms = [room_key(i) for i in range(args.rooms)]
    upstream = ScriptedUpstream().start()
    print(f"part 1: {args.rooms} rooms x {args.subscribers} sockets, {args.tokens} tokens at {args.rate}/s", flush=True)
    parley = run_replies("parley", args, upstream, rooms)
    print(f"  parley: p99 {parley['latency_p99_ms']:.0f} ms, {parley['bytes_per_subscriber']:,.0f} B/subscriber", flush=True)
    demo = run_replies("demo", args, upstream, rooms)
    print(f"  demo:   p99 {demo['latency_p99_ms']:.0f} ms, {demo['bytes_per_subscriber']:,.0f} B/subscriber", flush=True)
    if args.skip_capacity:
        fanout = per_socket = tuned = {"max_sustained": 0, "steps": []}
    else:
        print("part 2: the most frames/s one process sustains with p99 under 100 ms", flush=True)
        fanout = run_capacity("parley", args, upstream, rooms, [2500 * i for i in range(1, 17)])
        ramp = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12500, 15000]
        per_socket = run_capacity("per-socket", args, upstream, rooms, ramp)
        tuned = run_capacity("per-socket-tuned", args, upstream, rooms, ramp)
    before = None
    if args.before:
        app_dir = args.before.resolve()
        print(f"the same for {app_dir.name}:", flush=True)
        before = {"parley": run_replies("parley", args, upstream, rooms, app_dir)}
        if not args.skip_capacity:
            before["fanout"] = run_capacity("parley", args, upstream, rooms, [2500 * i for i in range(1, 17)], app_dir)
    upstream.stop()

    flush = settings.REPLY_FLUSH_INTERVAL
    table, passed = report(args, parley, demo, fanout, per_socket, tuned, flush)
    print("\n" + table)
    if before:
        print("\n" + compare(args.before.resolve().name, before, parley, fanout))
    (ROOT / "artifacts").mkdir(exist_ok=True)
    results = {"args": vars(args), "parley": parley, "demo": demo, "fanout": fanout, "per_socket": per_socket,
               "per_socket_tuned": tuned, "before": before}
    (ROOT / "artifacts" / "bench-stream.json").write_text(json.dumps(results, indent=1))
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmark-latency.svg").write_text(latency_svg(parley, demo, flush))
    print("\nwrote artifacts/bench-stream.json and docs/benchmark-latency.svg")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
