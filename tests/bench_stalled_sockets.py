"""Room sockets whose clients stop reading while every room streams: the server's memory, their close, the readers' latency.

    ./parley bench-slow-readers --sockets [--before REF] [--rooms 20] [--subscribers 25] [--stalled 100] [--seconds 60] [--rate 50]

One real Daphne process (PostgreSQL, Redis), the scripted upstream, R x S reading sockets in the
load client process (tests/bench_client.py), and a reply of `seconds x rate` tokens in every room.
Run twice in one go: once with the readers alone, once with `--stalled` more sockets spread over
the rooms, raw clients with a 4 KiB receive buffer that read nothing for the whole reply. Prints,
side by side: the readers' added latency p50/p99 and first words p99, the server's RSS when the
replies start and at its peak, and how many stalled sockets the server closed with 4013 (its log)
and were no longer open at the end. `--before REF` runs both on a checkout of REF too (a temporary
`git worktree`, its own database). BENCH_DATABASE_URL and BENCH_REDIS_URL as for bench-stream.
"""

import argparse
import contextlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_stream import DATABASE_URL, NOW, REDIS_URL, run_replies  # noqa: E402
from tests.bench_database import Side, prepare  # noqa: E402


def rss_mib(pid):
    """The process's resident memory, MiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def open_stalled(port, path):
    """A raw WebSocket client with a 4 KiB receive buffer that reads its handshake's answer and then nothing."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {os.urandom(16).hex()[:22]}==\r\nSec-WebSocket-Version: 13\r\n"
                   f"Origin: http://127.0.0.1:{port}\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += client.recv(1)  # one byte at a time: not one byte of the frames behind it
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"a stalled socket was refused: {head[:40]!r}")
    return client


def still_open(client):
    """Whether the server has not closed this connection (TCP state ESTABLISHED), read without reading data."""
    return struct.unpack("B", client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0] == 1


class Watch:
    """Around a run: opens the stalled sockets (if any) and samples the server's RSS until the replies end."""

    def __init__(self, rooms, stalled):
        self.rooms, self.stalled = rooms, stalled
        self.figures = {}

    @contextlib.contextmanager
    def __call__(self, server):
        clients = [open_stalled(server.port, f"/ws/rooms/{self.rooms[i % len(self.rooms)]}/") for i in range(self.stalled)]
        start = rss_mib(server.process.pid)
        peak, done = [start], threading.Event()

        def sample():
            while not done.wait(0.2):
                peak.append(rss_mib(server.process.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            yield
        finally:
            done.set()
            sampler.join()
            log = server.output()
            self.figures = {
                "RSS when the replies start (MiB)": start,
                "RSS peak (MiB)": max(peak),
                "RSS growth (MiB)": max(peak) - start,
                "stalled sockets closed with 4013 (server log)": log.count("bytes unsent: closed with 4013"),
                "stalled sockets no longer open at the end": sum(not still_open(client) for client in clients),
            }
            for client in clients:
                client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", action="store_true", help="this benchmark (bench-slow-readers' room socket part)")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=25)
    parser.add_argument("--before", help="a git ref to measure too, from a temporary worktree (e.g. main)")
    parser.add_argument("--stalled", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    args.tokens = int(args.seconds * args.rate)

    import django

    from tests.services import main as services_answer

    if services_answer(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", REDIS_URL):
        sys.exit("start PostgreSQL and Redis (or set BENCH_DATABASE_URL, BENCH_REDIS_URL) to run the benchmark")
    prepare(NOW)
    django.setup()
    from django.conf import settings

    from tests.bench_asgi import room_key
    from tests.upstream import ScriptedUpstream

    rooms = [room_key(i) for i in range(args.rooms)]
    upstream = ScriptedUpstream().start()
    # The readers and the stalled sockets all come from loopback: one address's share must hold them.
    env = {"ROOM_SOCKETS_PER_ADDRESS": str(args.rooms * args.subscribers + args.stalled + 10), "LOG_LEVEL": "INFO"}
    runs = []
    with tempfile.TemporaryDirectory(prefix="parley-stalled-") as directory:
        sides = [("", NOW)]
        if args.before:
            old = Path(directory) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.before], check=True)
            sides.insert(0, (f"{args.before}: ", Side(old, DATABASE_URL + "_before")))
            prepare(sides[0][1])
        try:
            for prefix, side in sides:
                for name, stalled in [("readers alone", 0), (f"with {args.stalled} stalled", args.stalled)]:
                    watch = Watch(rooms, stalled)
                    run = run_replies("parley", args, upstream, rooms, side, env=env, around=watch)
                    runs.append((prefix + name, {
                        "readers with every reply's exact text": f"{run['texts_equal_rows']} of {run['subscribers']}",
                        "added latency p50 (ms)": run["latency_p50_ms"],
                        "added latency p99 (ms)": run["latency_p99_ms"],
                        "first words p99 (ms)": run["first_token_p99_ms"],
                        **watch.figures,
                    }))
                    print(f"  {prefix}{name}: p99 {run['latency_p99_ms']:.0f} ms, RSS +{watch.figures['RSS growth (MiB)']:.1f} MiB",
                          flush=True)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    upstream.stop()
    bound = settings.SOCKET_MAX_UNSENT_BYTES
    print(f"\n{args.rooms} rooms x {args.subscribers} reading sockets, a reply of {args.tokens} tokens at {args.rate:.0f}/s "
          f"in each; {args.stalled} sockets reading nothing throughout; SOCKET_MAX_UNSENT_BYTES={bound} "
          f"(x {args.stalled} = {bound * args.stalled / 2**20:.1f} MiB)\n")
    print("| | " + " | ".join(name for name, _ in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for label in runs[-1][1]:
        cells = [figures.get(label, "") for _, figures in runs]
        print(f"| {label} | " + " | ".join(f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    p99 = [figures["added latency p99 (ms)"] for _, figures in runs]
    for at in range(0, len(p99), 2):
        print(f"{runs[at + 1][0]} / {runs[at][0]}: readers' p99 x {p99[at + 1] / p99[at]:.2f} (target <= 1.25)")

if __name__ == "__main__":
    main()
