"""Clients that open a room's event stream from event 0 and read nothing: what they cost the server.

    ./parley bench-slow-readers [--before REF] [--clients 15] [--seconds 30] [--rows 20000]
    ./parley bench-slow-readers --sockets ...   room sockets that read nothing: tests/bench_stalled_sockets.py

Seeds a room with 20,000 messages (SQLite in a temporary directory), starts one real Daphne, opens
the clients (`Last-Event-ID: 0`, a small receive buffer, never read) and samples the server's RSS
and CPU time for the given seconds: RSS at the start, at its peak and at the end, the CPU seconds
spent, and how many of the clients the server closed. This checkout is measured twice: with the
replay unbounded (so the flow control alone holds the memory) and on the default settings (the
resume gets `event: reset`). `--before REF` also serves a checkout of REF (made with `git worktree`
in a temporary directory, removed after) with the same environment, and prints the runs side by side.
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROOM = "BelleBot"


def setup_database(directory, rows):
    """A migrated SQLite database with rows messages in ROOM, and an API key: (database URL, key)."""
    url = f"sqlite:///{directory}/bench.sqlite3"
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="project.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    from chat.models import ApiKey, Message
    from chat.models.events import RoomClock

    call_command("migrate", verbosity=0)
    text = ("Arr, the tide be turning. " * 80)[:2000]
    Message.objects.bulk_create(
        [Message(room=ROOM, role="user", author="Anne", content=f"{i} {text}", seq=i + 1) for i in range(rows)], batch_size=2000
    )
    RoomClock.objects.update_or_create(room=ROOM, defaults={"last": rows})
    return url, ApiKey.objects.issue("Bench")[1]


def process_figures(pid):
    """(RSS in MiB, CPU seconds) of a process."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def still_open(client):
    """Whether the server has not closed this connection (TCP state ESTABLISHED), read without reading data."""
    info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    return struct.unpack("B", info)[0] == 1


def measure(app_dir, database_url, key, clients, seconds, env):
    """One server of app_dir, clients non-readers for seconds: its figures."""
    from tests.servers import Daphne

    server = Daphne({"DATABASE_URL": database_url, "REDIS_URL": None, "PYTHONPATH": str(app_dir), "LOG_LEVEL": "WARNING",
                     "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-none", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env},
                    cwd=app_dir)
    try:
        rss_start, cpu_start = process_figures(server.process.pid)
        sockets = []
        for _ in range(clients):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", server.port))
            client.sendall(f"GET /api/rooms/{ROOM}/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                           f"Authorization: Bearer {key}\r\nLast-Event-ID: 0\r\n\r\n".encode())
            sockets.append(client)
        peak, end = rss_start, time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, process_figures(server.process.pid)[0])
            time.sleep(0.1)
        rss_end, cpu_end = process_figures(server.process.pid)
        closed = sum(not still_open(client) for client in sockets)
        for client in sockets:
            client.close()
        return {"RSS at start (MiB)": rss_start, "RSS peak (MiB)": max(peak, rss_end), "RSS at the end (MiB)": rss_end,
                "server CPU over the run (s)": cpu_end - cpu_start, f"clients closed by the server (of {clients})": closed}
    finally:
        server.stop()


def main():
    if "--sockets" in sys.argv:
        from tests.bench_stalled_sockets import main as sockets

        return sockets()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git ref to measure too, from a temporary worktree (e.g. main)")
    parser.add_argument("--clients", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    unbounded = {"EVENT_REPLAY_MAX": "100000000", "SEND_STALL_TIMEOUT": "5"}
    with tempfile.TemporaryDirectory(prefix="parley-slow-readers-") as directory:
        database_url, key = setup_database(directory, args.rows)
        runs = []
        if args.before:
            old = Path(directory) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.before], check=True)
            try:
                runs.append((f"before ({args.before})", measure(old, database_url, key, args.clients, args.seconds, unbounded)))
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
        runs.append(("after, replay unbounded", measure(ROOT, database_url, key, args.clients, args.seconds, unbounded)))
        runs.append(("after, defaults", measure(ROOT, database_url, key, args.clients, args.seconds, {})))
    print(f"\n{args.clients} clients reading nothing from event 0 of a room of {args.rows:,} messages "
          f"(~{args.rows * 2 // 1000:,} MB of replay), {args.seconds:.0f} s\n")
    print("| | " + " | ".join(name for name, _ in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for label in runs[0][1]:
        print(f"| {label} | " + " | ".join(f"{figures[label]:.1f}" if isinstance(figures[label], float) else str(figures[label])
                                          for _, figures in runs) + " |")


if __name__ == "__main__":
    main()
