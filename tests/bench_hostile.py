"""Hostile bodies against one real Daphne process: how quick is /healthz, how large the process?

    ./parley bench-hostile [--before REF] [--seconds 10] [--body-mib 100]

Three figures for each server: GET /healthz's p50 and p99 when idle and while clients send 1 MiB
form bodies (many small fields) at 3 a second; then one form POST of --body-mib MiB: the time to
its answer, the slowest /healthz meanwhile, and the process's resident memory before, at its peak
and after. `--before REF` first serves a checkout of REF (a git worktree in a temporary directory,
run with this environment) with the same client, so the two are side by side in one run.
SQLite and the in-memory channel layer: nothing here needs more.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_servers import AS_PRODUCTION  # noqa: E402
from tests.bench_stream import percentile  # noqa: E402

MIB = 1024 * 1024
FIELDS = b"a=1&" * (16 * 1024)  # 64 KiB of small fields: the shape Twisted's form parser is slowest on


def rss(pid):
    """Resident memory of process pid in bytes, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


class Server:
    """One Daphne process serving the checkout in app_dir on a fresh SQLite database."""

    def __init__(self, app_dir, workdir):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "LLM_PROVIDER"}},
            **AS_PRODUCTION,
            "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3", "LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": "sk-unused", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "PYTHONPATH": str(app_dir),
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=app_dir, env=self.env, check=True)
        self.log = open(f"{workdir}/daphne.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"],
            cwd=app_dir, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if healthz(self.port) is not None:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne in {app_dir} did not answer /healthz")

    def stop(self):
        self.process.terminate()
        self.process.wait(20)
        self.log.close()


def healthz(port):
    """One GET /healthz on a new connection: its time in seconds (None if not 200)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = connection.makefile("rb").readline()
    return time.monotonic() - started if b" 200 " in answer else None


def healthz_while(port, running):
    """GET /healthz every 20 ms while running() holds; the times, sorted."""
    times = []
    while running():
        times.append(healthz(port))
        time.sleep(0.02)
    return sorted(t for t in times if t is not None)


def post_form(port, size, statuses):
    """POST size bytes of form fields to /healthz while reading: the answer's time, its status appended."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                           b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % size)
        answered = threading.Event()

        def send():  # as a browser or curl does: stop sending once the answer is in
            try:
                for _ in range(size // len(FIELDS)):
                    if answered.is_set():
                        return
                    connection.sendall(FIELDS)
            except OSError:
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        line = connection.makefile("rb").readline()
        answered.set()
    statuses.append(int(line.split()[1]) if line else 0)
    return time.monotonic() - started


def measure(label, app_dir, seconds, body_mib):
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as workdir:
        server = Server(app_dir, workdir)
        try:
            port, pid = server.port, server.process.pid
            end = time.monotonic() + seconds
            idle = healthz_while(port, lambda: time.monotonic() < end)

            statuses, senders, loaded = [], [], []
            done = threading.Event()
            probe = threading.Thread(target=lambda: loaded.extend(healthz_while(port, lambda: not done.is_set())))
            probe.start()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sender = threading.Thread(target=post_form, args=(port, MIB, statuses), daemon=True)
                sender.start()
                senders.append(sender)
                time.sleep(1 / 3)
            for sender in senders:
                sender.join(120)
            done.set()
            probe.join()

            before, peak, big = rss(pid), [rss(pid)], []
            done.clear()

            def sample():
                while not done.is_set():
                    peak.append(rss(pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            during = []
            probe = threading.Thread(target=lambda: during.extend(healthz_while(port, lambda: not done.is_set())))
            probe.start()
            took = post_form(port, body_mib * MIB, big)
            time.sleep(1)  # the process's memory a second after the answer
            done.set()
            sampler.join()
            probe.join()
            after = rss(pid)
        finally:
            server.stop()
    return {
        "label": label,
        "idle p50": f"{percentile(idle, 0.5) * 1000:.1f} ms", "idle p99": f"{percentile(idle, 0.99) * 1000:.1f} ms",
        "1 MiB x3/s p50": f"{percentile(loaded, 0.5) * 1000:.1f} ms",
        "1 MiB x3/s p99": f"{percentile(loaded, 0.99) * 1000:.1f} ms",
        "1 MiB answers": " ".join(f"{s}x{statuses.count(s)}" for s in sorted(set(statuses))),
        f"{body_mib} MiB answer": f"{took:.2f} s ({big[0]})",
        "healthz worst meanwhile": f"{max(during, default=float('nan')) * 1000:.0f} ms",
        "RSS before/peak/after": f"{before / MIB:.0f} / {max(peak) / MIB:.0f} / {after / MIB:.0f} MiB",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git ref to measure first, from a temporary worktree")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body-mib", type=int, default=100)
    args = parser.parse_args()
    results = []
    if args.before:
        with tempfile.TemporaryDirectory(prefix="bench-hostile-before-") as place:
            checkout = Path(place) / "app"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(checkout), args.before], cwd=ROOT, check=True)
            try:
                commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
                results.append(measure(f"{args.before} ({commit})", checkout, args.seconds, args.body_mib))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT, check=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results.append(measure(f"this checkout ({commit})", ROOT, args.seconds, args.body_mib))
    names = list(results[0])
    width = max(map(len, names)) + 2
    for name in names:
        print(name.ljust(width) + "".join(str(result[name]).ljust(34) for result in results))


if __name__ == "__main__":
    main()
