"""The streaming benchmark: Parley's hot path against the demo's design, and fan-out capacity.

    ./parley bench-stream [--rooms 20] [--subscribers 25] [--tokens 400] [--rate 50]

One real Daphne process (Redis channel layer, PostgreSQL), the scripted upstream, and a load
client process holding R x S sockets. Part 1 streams a reply of T tokens at U tokens/s in every
room at once, first with Parley as it ships, then with the demo's design, and compares them.
Part 2 offers ever more frames/s to the same sockets, from another process through the channel
layer as a second server would, and finds the most one process sustains with p99 under 100 ms,
with Parley's fan-out and with one channel per socket. Writes artifacts/bench-stream.json and
docs/benchmark-latency.svg. With --before DIR another checkout is measured too, its servers on a
database of its own (BENCH_DATABASE_URL's name + `_before`) that its own manage.py migrates.
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

from tests.bench_database import Side, clear, prepare, replies, row_writes, writes_between  # noqa: E402

NOW = Side(ROOT, DATABASE_URL)  # this checkout; --before adds another, on a database of its own

WORDS = "the ship sails at dawn with a hold full of rum and a map that nobody can read twice".split()
P99_TARGET = 0.100  # seconds: the bar for a sustained frame rate
PROBE_SECONDS = 4.0
FAST_RATE = 200.0  # tokens/s of the second Parley run: row writes must not follow the token rate
PARLEY_RAMP = [2500 * i for i in range(1, 17)]
ROOM_RATE_NOTE = "25 a room, 4 frames/s to each room; idle CPU taken off"


def tokens(count):
    """The reply every room gets: word-sized tokens, as a model streams them."""
    return [("" if i == 0 else " ") + WORDS[i % len(WORDS)] + ("." if i % 12 == 11 else "") for i in range(count)]


def percentile(ordered, share):
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- processes -----------------------------------------------------------------------------------


def server_env(design, rooms, upstream, side=NOW, **extra):
    env = {
        "PYTHONPATH": str(side.app_dir),
        "BENCH_DESIGN": design, "BENCH_ROOMS": str(rooms), "DATABASE_URL": side.database_url, "REDIS_URL": REDIS_URL,
        "DEBUG": "false", "SECRET_KEY": "benchmark", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false", "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url, "OPENAI_MODEL": "scripted",
        "MAX_STREAMING_REPLIES": str(rooms), "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000",
    }
    env.update(extra)
    return env


class Client:
    """The load client process (tests/bench_client.py), its sockets dealt among one or more servers."""

    def __init__(self, servers, rooms, per_room):
        servers = servers if isinstance(servers, list) else [servers]
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "bench_client.py"), ",".join(s.ws_url for s in servers),
             ",".join(rooms), str(per_room)],
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


def clean_slate(side=NOW):
    """No messages in the side's database, nothing in Redis: every run starts alike."""
    import redis

    clear(side)
    redis.Redis.from_url(REDIS_URL).flushdb()


def as_message(row):
    """A reply's row, from either side's database, as this checkout's Message (for its rendered
    size; a column the other checkout lacks keeps its default)."""
    from chat.models import Message

    names = {field.attname for field in Message._meta.concrete_fields}
    return Message(**{name: value for name, value in row.items() if name in names})


# --- part 1: replies --------------------------------------------------------------------------------


def run_replies(design, args, upstream, rooms, side=NOW):
    """Every room gets one reply of T tokens at U tokens/s at once; what did it cost and how late was it?"""
    from chat.delivery.frames import render_message
    from tests.servers import Browser, Daphne

    clean_slate(side)
    flush = {"demo": {"REPLY_FLUSH_INTERVAL": "0"}}.get(design, {})
    server = Daphne(server_env(design, len(rooms), upstream, side, **flush), app="tests.bench_asgi:application",
                    cwd=side.app_dir)
    writes_before = row_writes(side)
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
    written = writes_between(writes_before, row_writes(side))

    rows = replies(side)
    rendered = {room: len(render_message(as_message(row)).encode()) for room, row in rows.items()}
    sent = {}
    for exchange in upstream.exchanges:
        room = exchange.messages[0]["content"].removeprefix("You are ").rstrip(".")
        sent[room] = [at for at, _ in exchange.sent]
    ends, length = [], 0
    for token in script:
        length += len(token)
        ends.append(length)
    offset = len(script[0]) - len(script[0].lstrip())  # shown text is stripped

    latencies, firsts, mismatched = [], [], []
    for subscriber in report:
        reply = rows.get(subscriber["room"])
        if reply is None or subscriber["status"] != "complete" or subscriber["text"] != reply["content"].strip():
            mismatched.append(subscriber["room"])
            continue
        times = [at for at, _ in subscriber["progress"]]
        shown = [n for _, n in subscriber["progress"]]
        for index, end in enumerate(ends):
            at = bisect_left(shown, end - offset)
            if at < len(times) and index < len(sent[subscriber["room"]]):
                latencies.append(times[at] - sent[subscriber["room"]][index])
                if index == 0:
                    firsts.append(latencies[-1])
    latencies.sort()
    firsts.sort()
    durations = [stamps[-1] - stamps[0] for stamps in sent.values() if stamps]
    count = len(report)
    seconds = sum(durations) / max(1, len(durations))
    per_reply = {table: (w["inserted"] + w["updated"]) / max(1, len(rows)) for table, w in written.items()}
    return {
        "design": design,
        "replies": len(rows),
        "complete": sum(row["status"] == "complete" for row in rows.values()),
        "latency_p50_ms": percentile(latencies, 0.50) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        "latency_max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        "first_token_p99_ms": percentile(firsts, 0.99) * 1000,
        "frames_per_subscriber": sum(s["reply_frames"] for s in report) / count,
        "bytes_per_subscriber": sum(s["reply_bytes"] for s in report) / count,
        "rendered_bytes": sum(rendered.values()) / max(1, len(rendered)),
        "row_writes": written,
        "row_writes_per_reply_by_table": per_reply,
        "row_writes_per_reply": sum(per_reply.values()),
        "reply_seconds": seconds,
        "row_writes_per_second": sum(per_reply.values()) / max(1e-9, seconds),
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

    from chat.delivery.frames import grow

    channel_layers.backends.clear()  # a channels-redis layer belongs to one event loop: a new one per step
    layer, kind = get_channel_layer(), layer_type(app_dir)
    groups = [f"{room}.messages" for room in rooms]
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


def probe(servers, client, rooms, rate, per_room, app_dir=ROOT):
    """Offer `rate` frames/s for PROBE_SECONDS; what arrived, how late, at what CPU cost (of all servers)."""
    servers = servers if isinstance(servers, list) else [servers]

    def server_cpu():
        return sum(cpu_seconds(server.process.pid) for server in servers)

    client.process.stdin.write(json.dumps({"cmd": "probe", "seconds": PROBE_SECONDS + 1.5}) + "\n")
    client.process.stdin.flush()
    client.read()
    cpu_before, client_before = server_cpu(), cpu_seconds(client.process.pid)
    sent = asyncio.run(offer(rooms, rate, per_room, PROBE_SECONDS, app_dir))
    result = client.read()
    used, window = server_cpu() - cpu_before, PROBE_SECONDS + 1.5
    expected = sent * per_room
    step = {
        "offered": rate, "delivered_per_s": result["received"] / PROBE_SECONDS,
        "lost": expected - result["received"], "p50_ms": (result["p50"] or 0) * 1000,
        "p99_ms": (result["p99"] or float("inf")) * 1000,
        "server_cpu_per_s": used / window,
        "server_cpu_per_frame_us": used / max(1, result["received"]) * 1e6,
        "client_cpu_per_s": (cpu_seconds(client.process.pid) - client_before) / window,
    }
    step["sustained"] = step["p99_ms"] < P99_TARGET * 1000 and result["received"] >= expected
    return step


def run_capacity(design, args, upstream, rooms, ramp, side=NOW):
    """Raise the offered frames/s step by step until p99 passes 100 ms or frames go missing."""
    from tests.servers import Daphne

    clean_slate(side)
    server = Daphne(server_env(design, len(rooms), upstream, side), app="tests.bench_asgi:application", cwd=side.app_dir)
    steps = []
    try:
        client = Client(server, rooms, args.subscribers)
        for rate in ramp:
            # This machine is shared: a step fails only when a second try fails as well.
            step = probe(server, client, rooms, rate, args.subscribers, side.app_dir)
            if not step["sustained"]:
                step = probe(server, client, rooms, rate, args.subscribers, side.app_dir)
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

WRITES = "row writes per reply, every table"
# What a reply may write, every table counted: each of its changes (its insert, its claim, at most
# duration / flush interval + 1 growths, its finish: the "+ 4") writes its row and takes its room's
# next event number from the room's counter (a second row); the question it answers writes its
# row, its number and the guest's new session (the "+ 3").
WRITES_TARGET = f"{WRITES} (question and reply rows, the room's counter, the session) <= 2 x (duration / flush interval + 4) + 3"


def figure(run, key):
    """A run's figure: a key of the run, or (key, table) for one table's share of the row writes."""
    return run[key] if isinstance(key, str) else run[key[0]].get(key[1], 0)


def writes_rows(*runs):
    """The row writes' lines of a table: the total, then each table that any of the runs wrote."""
    tables = sorted({table for run in runs for table in run["row_writes_per_reply_by_table"]})
    return [(WRITES, "row_writes_per_reply", "{:.1f}")] + [
        (f"  of which {table}", ("row_writes_per_reply_by_table", table), "{:.1f}") for table in tables
    ]


def compare(name, before, fanout):
    """Parley as checked out at --before beside Parley now, measured in the same run (part 1: the
    mean of each side's two turns)."""
    rows = [("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"), ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
            ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
            ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
            *writes_rows(*before["turns"]["before"], *before["turns"]["now"]),
            ("server CPU (s)", "server_cpu_seconds", "{:.1f}"), ("server peak memory (MiB)", "server_peak_mib", "{:.0f}")]
    lines = [f"| | {name} (before) | now | now / before |", "|---|---:|---:|---:|"]
    for label, key, form in rows:
        old, new = (sum(figure(run, key) for run in before["turns"][side]) / 2 for side in ("before", "now"))
        lines.append(f"| {label} | {form.format(old)} | {form.format(new)} | {f'{new / old:.2f}x' if old else '-'} |")
    if "fanout" in before:
        old, new = before["fanout"]["max_sustained"], fanout["max_sustained"]
        lines.append(f"| fan-out frames/s with p99 < 100 ms | {old:,} | {new:,} | {new / max(1, old):.2f}x |")
    return "\n".join(lines)


def report(args, runs, flush):
    """The tables and the targets; returns (text, every target met)."""
    from tests.bench_scaling import flatness

    parley, demo, fast = runs["parley"], runs["demo"], runs["parley_fast"]
    fanout, per_socket, tuned, two = runs["fanout"], runs["per_socket"], runs["per_socket_tuned"], runs["two_processes"]
    rows = [
        ("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"),
        ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
        ("first token to every page, p99 (ms)", "first_token_p99_ms", "{:.0f}"),
        ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
        ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
        ("final rendered message (bytes)", "rendered_bytes", "{:,.0f}"),
        *writes_rows(parley, demo, fast),
        ("row writes per second of reply, every table", "row_writes_per_second", "{:.1f}"),
        ("reply duration (s)", "reply_seconds", "{:.2f}"),
        ("server CPU (s)", "server_cpu_seconds", "{:.1f}"),
        ("server peak memory (MiB)", "server_peak_mib", "{:.0f}"),
    ]
    lines = [
        f"R={args.rooms} rooms x S={args.subscribers} subscribers ({args.rooms * args.subscribers} sockets), "
        f"T={args.tokens} tokens at U={args.rate}/s, flush interval {flush * 1000:.0f} ms; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        f"| | Parley | demo's design | demo / Parley | Parley at U={FAST_RATE:.0f}/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, form in rows:
        new, old, quick = (figure(run, key) for run in (parley, demo, fast))
        ratio = old / new if new else float("nan")
        lines.append(f"| {label} | {form.format(new)} | {form.format(old)} | {ratio:.1f}x | {form.format(quick)} |")
    lines.append(f"| subscribers whose final text equals the row | {parley['texts_equal_rows']}/{parley['subscribers']} "
                 f"| {demo['texts_equal_rows']}/{demo['subscribers']} | | {fast['texts_equal_rows']}/{fast['subscribers']} |")
    lines += [
        "",
        "| fan-out, 500 sockets | most frames/s with p99 < 100 ms |",
        "|---|---:|",
        f"| Parley: one subscription per room per process | {fanout['max_sustained']:,} |",
        f"| Parley, two processes behind Redis, sockets dealt among them | {two['max_sustained']:,} |",
        f"| one channel per socket (Channels' usual consumer) | {per_socket['max_sustained']:,} |",
        f"| one channel per socket, without the per-message database hop | {tuned['max_sustained']:,} |",
    ]
    if runs["sweep"]:
        lines += ["", f"| sockets in one process ({ROOM_RATE_NOTE}) | frames/s delivered | p99 (ms) | server CPU per frame (us) |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {s['sockets']:,} | {s['delivered_per_s']:,.0f} | {s['p99_ms']:.1f} | {s['server_cpu_per_frame_us']:.0f} |"
                  for s in runs["sweep"]]
    before = runs.get("before")
    capacity_kept = (f"no lower than before's ({before['fanout']['max_sustained']:,})", fanout["max_sustained"]
                     >= before["fanout"]["max_sustained"]) if before and "fanout" in before else None
    checks = [
        ("added latency p50 <= 80 ms", parley["latency_p50_ms"] <= 80),
        ("added latency p99 <= 150 ms", parley["latency_p99_ms"] <= 150),
        ("first token to every page p99 <= 100 ms", parley["first_token_p99_ms"] <= 100),
        ("bytes per subscriber <= 6 x final rendered message", parley["bytes_per_subscriber"] <= 6 * parley["rendered_bytes"]),
        (WRITES_TARGET, parley["row_writes_per_reply"] <= 2 * (parley["reply_seconds"] / flush + 4) + 3),
        (f"row writes per second at U={FAST_RATE:.0f} no more than at U={args.rate:.0f} (within 25 %)",
         fast["row_writes_per_second"] <= 1.25 * parley["row_writes_per_second"]),
        ("fan-out >= 2 x one channel per socket without the database hop", fanout["max_sustained"] >= 2 * tuned["max_sustained"]),
        ("server CPU per delivered frame flat (within 25 %) from 250 to 2,000 sockets",
         bool(runs["sweep"]) and flatness(runs["sweep"]) <= 1.25),
        ("every subscriber's final text equals its row", all(
            run["texts_equal_rows"] == run["subscribers"] for run in (parley, demo, fast))),
    ]
    if capacity_kept:
        checks.append(("fan-out capacity " + capacity_kept[0], capacity_kept[1]))
    lines.append("")
    lines += [f"- [{'x' if ok else ' '}] {label}" for label, ok in checks]
    if not capacity_kept:
        lines.append("- [-] fan-out capacity against an older checkout: not measured (run with --before DIR)")
    return "\n".join(lines), all(ok for _, ok in checks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=25)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--skip-capacity", action="store_true", help="part 1 only (no capacity, no sweep)")
    parser.add_argument("--before", type=Path, help="another checkout of Parley (a worktree of an older commit): "
                        "Parley's part 1 and its fan-out capacity are measured on it too, in the same run")
    args = parser.parse_args()

    import django

    from tests.services import main as services_answer

    if services_answer(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", REDIS_URL):
        sys.exit("start PostgreSQL and Redis (or set BENCH_DATABASE_URL, BENCH_REDIS_URL) to run the benchmark")
    prepare(NOW)
    # The other checkout on a database of its own, migrated by its own manage.py: its migrations may differ.
    other = args.before and Side(args.before.resolve(), DATABASE_URL + "_before")
    if other:
        prepare(other)
    django.setup()
    from django.conf import settings

    from tests.bench_asgi import room_key
    from tests.bench_plot import latency_svg, scaling_svg
    from tests.bench_scaling import run_sweep, run_two_processes
    from tests.upstream import ScriptedUpstream

    rooms = [room_key(i) for i in range(args.rooms)]
    upstream = ScriptedUpstream().start()
    runs = {}
    print(f"part 1: {args.rooms} rooms x {args.subscribers} sockets, {args.tokens} tokens at {args.rate}/s", flush=True)
    for name, design, rate in [("parley", "parley", args.rate), ("demo", "demo", args.rate), ("parley_fast", "parley", FAST_RATE)]:
        run = runs[name] = run_replies(design, argparse.Namespace(**{**vars(args), "rate": rate}), upstream, rooms)
        print(f"  {name:>11}: p99 {run['latency_p99_ms']:.0f} ms, first token p99 {run['first_token_p99_ms']:.0f} ms, "
              f"{run['bytes_per_subscriber']:,.0f} B/subscriber, {run['row_writes_per_second']:.1f} writes/s", flush=True)
    empty = {"max_sustained": 0, "steps": []}
    runs.update(fanout=empty, per_socket=empty, per_socket_tuned=empty, two_processes=empty, sweep=[])
    if not args.skip_capacity:
        print("part 2: the most frames/s one process sustains with p99 under 100 ms", flush=True)
        runs["fanout"] = run_capacity("parley", args, upstream, rooms, PARLEY_RAMP)
        runs["two_processes"] = run_two_processes(upstream, rooms, args.subscribers, PARLEY_RAMP)
        ramp = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12500, 15000]
        runs["per_socket"] = run_capacity("per-socket", args, upstream, rooms, ramp)
        runs["per_socket_tuned"] = run_capacity("per-socket-tuned", args, upstream, rooms, ramp)
        print("part 3: sockets in one process, the same frames per second in every room", flush=True)
        runs["sweep"] = run_sweep(upstream)
    before = None
    if other:
        print(f"the same for {other.app_dir.name}:", flush=True)
        # Part 1 as A B B A (now, before, before, now): on a shared machine the order of runs
        # matters as much as the code, so each side gets an early and a late turn.
        pairs = [("before", other), ("before", other), ("now", NOW)]
        turns = {"now": [runs["parley"]], "before": []}
        for name, side in pairs:
            turns[name].append(run := run_replies("parley", args, upstream, rooms, side))
            print(f"  {name:>6}: p50 {run['latency_p50_ms']:.0f} ms, p99 {run['latency_p99_ms']:.0f} ms, "
                  f"{run['row_writes_per_reply']:.1f} row writes per reply", flush=True)
        before = {"turns": turns}
        if not args.skip_capacity:
            before["fanout"] = run_capacity("parley", args, upstream, rooms, PARLEY_RAMP, other)
    runs["before"] = before
    upstream.stop()

    flush = settings.REPLY_FLUSH_INTERVAL
    table, passed = report(args, runs, flush)
    print("\n" + table)
    if before:
        print("\n" + compare(args.before.resolve().name, before, runs["fanout"]))
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "bench-stream.json").write_text(json.dumps({"args": vars(args), **runs}, indent=1, default=str))
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmark-latency.svg").write_text(latency_svg(runs["parley"], runs["demo"], flush))
    written = "artifacts/bench-stream.json and docs/benchmark-latency.svg"
    if runs["sweep"]:
        (ROOT / "docs" / "benchmark-scaling.svg").write_text(scaling_svg(runs))
        written += " and docs/benchmark-scaling.svg"
    print(f"\nwrote {written}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
