"""The streaming benchmark's part 3: how the cost of delivery grows with the work.

- A sweep over sockets in one process (250 to 10,000 sockets, 25 a room, the same frames per second
  in every room): p99 latency, server CPU per delivered frame (the CPU of the same sockets sitting
  idle taken off) and memory per idle socket at each size. CPU per frame that does not grow means delivery costs
  the same per page however many pages there are. The load client is one process per 2,000 sockets,
  so that it is not what runs out.
- Fan-out capacity with two server processes behind Redis beside one, the sockets dealt among them.
"""

import os
import time

from tests.bench_capacity import probe
from tests.bench_stream import PROBE_SECONDS, ROOT, Client, cpu_seconds, resident_kib, server_env

SWEEP = (250, 500, 1000, 2000, 5000, 10000)
SOCKETS_PER_CLIENT = 2000  # a load client process holds at most this many sockets
PER_ROOM = 25  # sockets in each room
ROOM_RATE = 4  # frames per second sent to each room's group (each reaches its 25 sockets)


def run_sweep(upstream, sizes=SWEEP, side=None, room_rate=ROOM_RATE):
    """One server process per size; frames offered at room_rate a second to each room; p99, CPU per delivered frame and
    memory per idle socket (side: another checkout's code, for --before)."""
    from tests.bench_asgi import room_key
    from tests.bench_stream import NOW, clean_slate
    from tests.servers import Daphne

    side = side or NOW
    steps = []
    for sockets in sizes:
        rooms = [room_key(i) for i in range(sockets // PER_ROOM)]
        clean_slate(side)
        server = Daphne(server_env("parley", len(rooms), upstream, side), app="tests.bench_asgi:application", cwd=side.app_dir)
        try:
            # Memory per idle socket: the process's resident size before its sockets and once they sit idle.
            time.sleep(1)
            empty = resident_kib(server.process.pid)
            client = Client(server, rooms, PER_ROOM, processes=-(-sockets // SOCKETS_PER_CLIENT))
            # What the server spends with the sockets open and no frames (upkeep, keep-alives): taken
            # off, so the figure is what one more delivered frame costs, at any size.
            window = PROBE_SECONDS + 1.5
            before = cpu_seconds(server.process.pid)
            time.sleep(window)
            idle = cpu_seconds(server.process.pid) - before
            per_idle_socket = (resident_kib(server.process.pid) - empty) / sockets
            step = probe(server, client, rooms, sockets * room_rate, PER_ROOM, side.app_dir)
            step["kib_per_idle_socket"] = per_idle_socket
            received = step["delivered_per_s"] * PROBE_SECONDS
            step["idle_cpu_per_s"] = idle / window
            step["server_cpu_per_frame_us"] = max(0.0, step["server_cpu_per_s"] * window - idle) / max(1, received) * 1e6
            client.close()
        finally:
            server.stop()
        step["sockets"] = sockets
        steps.append(step)
        print(f"  {sockets:>5} sockets: {step['delivered_per_s']:,.0f} frames/s delivered, p99 {step['p99_ms']:.1f} ms, "
              f"{step['server_cpu_per_frame_us']:.0f} us of server CPU per frame, {step['kib_per_idle_socket']:.1f} KiB per idle socket, "
              f"lost {step['lost']}; CPU-s a second: server {step['server_cpu_per_s']:.2f} ({step['idle_cpu_per_s']:.2f} idle), load client {step['client_cpu_per_s']:.2f}, "
              f"whole machine {step['machine_cpu_per_s']:.2f} of {os.cpu_count()}",
              flush=True)
    return steps


def run_two_processes(upstream, rooms, per_room, ramp):
    """The most frames/s with p99 under 100 ms when two server processes share the sockets through Redis."""
    from tests.bench_stream import clean_slate
    from tests.servers import Daphne

    clean_slate()
    env = server_env("parley", len(rooms), upstream)
    servers = [Daphne(env, app="tests.bench_asgi:application", cwd=ROOT) for _ in range(2)]
    steps = []
    try:
        client = Client(servers, rooms, per_room)
        for rate in ramp:
            step = probe(servers, client, rooms, rate, per_room)
            if not step["sustained"]:  # a shared machine: a step fails only when a second try fails too
                step = probe(servers, client, rooms, rate, per_room)
            steps.append(step)
            print(f"  2 processes: {rate:>6} frames/s offered, p99 {step['p99_ms']:7.1f} ms, lost {step['lost']}, "
                  f"servers' CPU {step['server_cpu_per_s']:.2f}/s{'' if step['sustained'] else '  <- not sustained'}",
                  flush=True)
            if not step["sustained"]:
                break
        client.close()
    finally:
        for server in servers:
            server.stop()
    sustained = [s["offered"] for s in steps if s["sustained"]]
    return {"design": "parley x2", "steps": steps, "max_sustained": max(sustained) if sustained else 0}


def cost_growth(steps):
    """The largest server CPU per frame over the first (smallest) size's: 1.0 or less when a frame
    costs no more with more sockets. Cheaper at scale passes (frames for one socket share a write)."""
    costs = [step["server_cpu_per_frame_us"] for step in steps]
    return max(costs) / costs[0] if costs and costs[0] > 0 else float("inf")
