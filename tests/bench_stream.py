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
Part 2 is in tests/bench_capacity.py, part 3 in tests/bench_scaling.py, the tables in tests/bench_report.py.
"""

import argparse
import contextlib
import json
import os
import re
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

from tests.bench_database import Side, clear, count_rows, prepare, replies, row_writes, writes_between  # noqa: E402
from tests.bench_servers import AS_PRODUCTION  # noqa: E402

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
        **AS_PRODUCTION,
        "PYTHONPATH": str(side.app_dir),
        "BENCH_DESIGN": design, "BENCH_ROOMS": str(rooms), "DATABASE_URL": side.database_url, "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url, "OPENAI_MODEL": "scripted",
        "MAX_STREAMING_REPLIES": str(rooms), "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000",
        "ROOM_SOCKETS_PER_ADDRESS": "100000",  # every load client's socket comes from one address
    }
    env.update(extra)
    return env


class Client:
    """The load client (tests/bench_client.py), its sockets dealt among one or more servers: one process,
    or several (each with whole rooms of its own) when one would be the bottleneck; answers merged."""

    def __init__(self, servers, rooms, per_room, processes=1):
        servers = servers if isinstance(servers, list) else [servers]
        shares = [rooms[i::processes] for i in range(processes) if rooms[i::processes]]
        self.processes = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "bench_client.py"), ",".join(s.ws_url for s in servers),
                 ",".join(share), str(per_room)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for share in shares
        ]
        ready = self.read()
        if ready["ready"] != len(rooms) * per_room:
            raise RuntimeError(f"only {ready['ready']} sockets opened: {ready['failed']}")

    @property
    def process(self):
        """The first (often the only) client process."""
        return self.processes[0]

    def send(self, **command):
        for process in self.processes:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()

    def read(self):
        """The next answer of every client process, merged into one."""
        answers = []
        for process in self.processes:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("the load client died")
            answers.append(json.loads(line))
        return merged(answers)

    def ask(self, **command):
        self.send(**command)
        return self.read()

    def cpu_seconds(self):
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def close(self):
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait(10)


def merged(answers):
    """One answer from the client processes' answers to the same command (see tests/bench_client.py)."""
    if len(answers) == 1:
        return answers[0]
    first = answers[0]
    if "ready" in first:
        return {"ready": sum(a["ready"] for a in answers), "failed": [f for a in answers for f in a["failed"]]}
    if "subscribers" in first:
        return {"subscribers": [s for a in answers for s in a["subscribers"]]}
    if "received" in first:
        # Each process sends a sample of its latencies (evenly spaced in sorted order); shares are
        # equal in size, so the pooled samples stand for the pooled latencies.
        latencies = sorted(x for a in answers for x in a["latencies"])
        ends = [a["max"] for a in answers if a["max"] is not None]
        return {"received": sum(a["received"] for a in answers), "latencies": latencies,
                "p50": percentile(latencies, 0.5) if latencies else None,
                "p99": percentile(latencies, 0.99) if latencies else None, "max": max(ends) if ends else None}
    return {"ok": all(a.get("ok") for a in answers)}


def cpu_seconds(pid):
    """User + system CPU of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds():
    """CPU-seconds every core of this machine has spent busy (not idle or waiting), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def resident_kib(pid):
    """A process's resident memory now, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_memory_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_rooms(side, rooms, upstream):
    """The benchmark's rooms made as rows by the side's own server module, in a process of its own
    with a server's settings, before any run: counted in a run, their writes would be taken for the replies'."""
    env = {**os.environ, **server_env("parley", rooms, upstream, side)}
    subprocess.run([sys.executable, "-c", "import tests.bench_asgi"], cwd=side.app_dir, env=env, check=True)
    # PostgreSQL counts a session's writes when it flushes its statistics, which a busy server may do
    # late: a first run once counted these rooms as its replies' writes. Wait until they are counted.
    deadline = time.monotonic() + 30
    while row_writes(side).get("bots_room", (0, 0))[0] < count_rows(side, "bots_room") and time.monotonic() < deadline:
        time.sleep(0.1)


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


def run_replies(design, args, upstream, rooms, side=NOW, load=None, in_turn=False, env=None, around=None):
    """Every room gets one reply of T tokens at U tokens/s at once; what did it cost and how late was it?

    load(server): other traffic started once the sockets are open, its stop(posted_at) called after
    the replies end (posted_at: when the last post asking for one answered) and its figures
    returned under "load". in_turn: the posts go one after another.
    env: more server settings; around(server): a context manager the replies stream within.
    """
    from chat.delivery.frames import render_message
    from tests.servers import Browser, Daphne

    clean_slate(side)
    flush = {"demo": {"REPLY_FLUSH_INTERVAL": "0"}}.get(design, {})
    server = Daphne(server_env(design, len(rooms), upstream, side, **flush, **(env or {})), app="tests.bench_asgi:application",
                    cwd=side.app_dir)
    writes_before = row_writes(side)
    upstream.reset()
    script = tokens(args.tokens)
    for _ in rooms:
        upstream.will(tokens=script, rate=args.rate)
    post_ms, loaded, traffic = {}, None, None
    try:
        client = Client(server, rooms, args.subscribers)
        with around(server) if around else contextlib.nullcontext():
            client.ask(cmd="reply")
            traffic = load(server) if load else None
            cpu_before = cpu_seconds(server.process.pid)

            def post(room, browser):
                started = time.monotonic()
                browser.submit(f"/rooms/{room}/", f"/rooms/{room}/messages", token, {"content": f"Tell {room} a tale"})
                post_ms[room] = (time.monotonic() - started) * 1000

            browser = Browser(server.url)
            # The page first, as a person would: the server's first page view, timed apart from the posts.
            loading = time.monotonic()
            token = browser.form_token(f"/rooms/{rooms[0]}/")
            first_page_ms = (time.monotonic() - loading) * 1000
            posters = [threading.Thread(target=post, args=(room, Browser(server.url, browser.cookies))) for room in rooms]
            for poster in posters:
                poster.start()
                if in_turn:
                    poster.join()
            for poster in posters:
                poster.join()
            posted_at = time.monotonic()  # every reply asked for: from here on the rooms only stream
            seconds = args.tokens / args.rate
            report = client.ask(cmd="collect", timeout=seconds * 20 + 60)["subscribers"]
            cpu = cpu_seconds(server.process.pid) - cpu_before
        memory = peak_memory_mib(server.process.pid)
        loaded = traffic.stop(posted_at) if traffic else None
        during = server.output()  # what it logs after this (the run's sockets closing, its stop) is not the run's
        client.close()
    finally:
        if traffic:
            traffic.close()
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

    latencies, firsts, mismatched, room_firsts = [], [], [], {}
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
                    room_firsts.setdefault(subscriber["room"], []).append(latencies[-1] * 1000)
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
        "first_words_by_room_ms": {room: sorted(room_firsts.get(room, [])) for room in rooms},
        # The server's own log line for each full collection (chat/server/heap.py): every thread waits it out.
        "heap_thaws_ms": [int(ms) for ms in re.findall(r"heap thawed and collected in (\d+) ms", during)],
        "post_ms": post_ms,
        "first_page_ms": first_page_ms,
        "load": loaded,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=25)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--skip-capacity", action="store_true", help="part 1 only (no capacity, no sweep)")
    parser.add_argument("--mixed-only", action="store_true", help="only the mixed load (tests/bench_mixed.py)")
    parser.add_argument("--room-rate", type=float, default=4, help="with --sweep-only: frames a second to each room (default 4)")
    parser.add_argument("--sweep-only", metavar="SIZES", help="only part 3, at these socket counts (say 250,2000); "
                        "with --before, the other checkout's at each size too")
    parser.add_argument("--redis-hosts", action="store_true",
                        help="only fan-out capacity over one Redis host and over two (tests/bench_redis_hosts.py)")
    parser.add_argument("--load-rate", type=float, default=20, help="the loader's requests a second")
    parser.add_argument("--probe-rate", type=float, default=2, help="the same requests without the loader, a second")
    parser.add_argument("--profile", action="store_true", help="py-spy on the server under the loader")
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
    from tests.bench_capacity import run_capacity
    from tests.bench_plot import latency_svg, scaling_svg
    from tests.bench_report import compare, report
    from tests.bench_scaling import run_sweep, run_two_processes
    from tests.upstream import ScriptedUpstream

    rooms = [room_key(i) for i in range(args.rooms)]
    upstream = ScriptedUpstream().start()
    for side in [NOW, *([other] if other else [])]:
        make_rooms(side, len(rooms), upstream)
    if args.mixed_only:
        from tests.bench_mixed import run_mixed

        sys.exit(run_mixed(run_replies, NOW, args, upstream, rooms, other))
    if args.sweep_only:
        sizes = [int(size) for size in args.sweep_only.split(",")]
        print("part 3 alone: sockets in one process, the same frames per second in every room", flush=True)
        for name, side in [("now", NOW), *([("before", other)] if other else [])]:
            print(f"  {name}:", flush=True)
            run_sweep(upstream, sizes, side, args.room_rate)
        sys.exit(0)
    if args.redis_hosts:
        from tests.bench_redis_hosts import redis_hosts_table, run_redis_hosts

        result = run_redis_hosts(upstream, rooms, args.subscribers, PARLEY_RAMP)
        upstream.stop()
        (ROOT / "artifacts").mkdir(exist_ok=True)
        (ROOT / "artifacts" / "bench-redis-hosts.json").write_text(json.dumps(result, indent=1, default=str))
        print("\n" + redis_hosts_table(result, len(rooms) * args.subscribers))
        sys.exit(0)
    runs = {}
    print(f"part 1: {args.rooms} rooms x {args.subscribers} sockets, {args.tokens} tokens at {args.rate}/s", flush=True)
    for name, design, rate in [("parley", "parley", args.rate), ("demo", "demo", args.rate), ("parley_fast", "parley", FAST_RATE)]:
        run = runs[name] = run_replies(design, argparse.Namespace(**{**vars(args), "rate": rate}), upstream, rooms)
        print(f"  {name:>11}: p99 {run['latency_p99_ms']:.0f} ms, first token p99 {run['first_token_p99_ms']:.0f} ms, "
              f"first page {run['first_page_ms']:.0f} ms, "
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
            print(f"  {name:>6}: p50 {run['latency_p50_ms']:.0f} ms, p99 {run['latency_p99_ms']:.0f} ms, first token p99 "
                  f"{run['first_token_p99_ms']:.0f} ms, first page {run['first_page_ms']:.0f} ms, "
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
