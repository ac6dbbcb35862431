"""The streaming benchmark's fan-out capacity over one Redis host and over two, side by side in one run.

Two server processes share the sockets, as in part 2's two-process run; the frames come from
another process through a layer over the same hosts. The sides take turns (one host, two, two,
one), so load that comes and goes on a shared machine falls on both.
"""

import shutil

from tests.bench_capacity import probe
from tests.bench_stream import REDIS_URL, ROOT, Client, server_env

TURNS = (1, 2, 2, 1)  # Redis hosts, in the order they run


def run_capacity_over(urls, upstream, rooms, per_room, ramp):
    """The most frames/s with p99 under 100 ms, two server processes sharded over the Redis URLs."""
    from tests.bench_stream import clean_slate
    from tests.servers import Daphne

    clean_slate()
    env = server_env("parley", len(rooms), upstream, REDIS_URL=",".join(urls))
    servers = [Daphne(env, app="tests.bench_asgi:application", cwd=ROOT) for _ in range(2)]
    steps = []
    try:
        client = Client(servers, rooms, per_room)
        for rate in ramp:
            step = probe(servers, client, rooms, rate, per_room, hosts=urls)
            if not step["sustained"]:  # a shared machine: a step fails only when a second try fails too
                step = probe(servers, client, rooms, rate, per_room, hosts=urls)
            steps.append(step)
            print(f"  {len(urls)} Redis host{'s' if len(urls) > 1 else ''}: {rate:>6} frames/s offered, "
                  f"p99 {step['p99_ms']:7.1f} ms, lost {step['lost']}, servers' CPU {step['server_cpu_per_s']:.2f}/s"
                  f"{'' if step['sustained'] else '  <- not sustained'}", flush=True)
            if not step["sustained"]:
                break
        client.close()
    finally:
        for server in servers:
            server.stop()
    sustained = [s["offered"] for s in steps if s["sustained"]]
    return {"hosts": len(urls), "steps": steps, "max_sustained": max(sustained) if sustained else 0}


def run_redis_hosts(upstream, rooms, per_room, ramp):
    """Capacity over one Redis host and over two (a redis-server of the run's own), in turns."""
    from chat.delivery.layer import RoomLayer
    from tests.servers import RedisServer

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--redis-hosts needs redis-server on PATH for its second Redis host")
    second = RedisServer(binary)
    try:
        urls = [REDIS_URL, second.url]
        layer = RoomLayer(hosts=urls)
        on_first = sum(layer.host_of(f"{room}.messages") == layer.hosts[0] for room in rooms)
        print(f"fan-out capacity over Redis hosts: of {len(rooms)} rooms, {on_first} on the first host and "
              f"{len(rooms) - on_first} on the second (channels-redis's hash)", flush=True)
        turns = [run_capacity_over(urls[:hosts], upstream, rooms, per_room, ramp) for hosts in TURNS]
    finally:
        second.stop()
    return {"turns": turns, "rooms_on_first": on_first}


def redis_hosts_table(result, sockets):
    """The side-by-side table, one column per host count, one row per turn."""
    by_hosts = {1: [], 2: []}
    for turn in result["turns"]:
        by_hosts[turn["hosts"]].append(turn["max_sustained"])
    lines = [
        f"| fan-out, {sockets:,} sockets over two processes | one Redis host | two Redis hosts | two / one |",
        "|---|---:|---:|---:|",
    ]
    for number, (one, two) in enumerate(zip(by_hosts[1], by_hosts[2]), 1):  # each pair ran back to back
        lines.append(f"| most frames/s with p99 < 100 ms, turn {number} | {one:,} | {two:,} | {two / max(1, one):.2f}x |")
    return "\n".join(lines)
