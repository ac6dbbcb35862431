"""How late the event loop's thread wakes while views run Python code in threads, at Python's default
switch interval and at a shorter one (THREAD_SWITCH_INTERVAL if set, else 0.5 ms), in turns in one run.

    ./parley bench-threads [--busy 2] [--seconds 1.5] [--rounds 2]

A thread that waits 1 ms at a time (as the loop waits in epoll between frames) and two threads that
never wait (as views rendering pages): each time it wakes it must take the interpreter lock back, and a
thread holding it lets go only after the switch interval.
"""

import argparse
import os
import sys
import threading
import time

DEFAULT = 0.005  # Python's own


def lateness(busy, seconds):
    """How late a 1 ms wait ends while `busy` threads run, over `seconds`: (wake-ups a second, p50 ms, p99 ms)."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(i * i for i in range(2000))

    threads = [threading.Thread(target=spin) for _ in range(busy)]
    for thread in threads:
        thread.start()
    late, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        time.sleep(0.001)
        late.append(time.monotonic() - started - 0.001)
    stop.set()
    for thread in threads:
        thread.join()
    late.sort()
    return len(late) / seconds, late[len(late) // 2] * 1000, late[int(len(late) * 0.99)] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ours = float(os.environ.get("THREAD_SWITCH_INTERVAL") or 0.0005)  # the shorter one measured here
    found = {DEFAULT: [], ours: []}
    for _ in range(args.rounds):
        for interval in found:
            sys.setswitchinterval(interval)
            found[interval].append(lateness(args.busy, args.seconds))
    print(f"a thread waking from 1 ms waits while {args.busy} threads run Python code ({args.rounds} rounds each, in turns):")
    for interval, rounds in found.items():
        rate, p50, p99 = (sorted(values)[len(values) // 2] for values in zip(*rounds))
        print(f"  switch interval {interval * 1000:.1f} ms: {rate:,.0f} wake-ups/s, late by p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    (_, d50, d99), (_, o50, o99) = ((sorted(v)[len(v) // 2] for v in zip(*rounds)) for rounds in found.values())
    print(f"  {ours * 1000:.1f} ms / default: p50 {o50 / d50:.2f}x, p99 {o99 / d99:.2f}x")


if __name__ == "__main__":
    main()
