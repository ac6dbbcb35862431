"""The streaming benchmark's part 2: the most frames/s a server sustains with p99 under 100 ms."""

import asyncio
import time

from tests.bench_stream import (
    NOW, P99_TARGET, PROBE_SECONDS, ROOT, Client, clean_slate, cpu_seconds, machine_cpu_seconds, server_env,
)


def layer_type(app_dir):
    """The layer message type the served checkout's fan-out reads: `room.frame` since the fan-out
    moved to chat/delivery/, `turbo.stream` before (for measuring an older checkout with --before)."""
    return "room.frame" if (app_dir / "chat" / "delivery" / "fanout.py").exists() else "turbo.stream"


async def offer(rooms, frames_per_second, per_room, seconds, app_dir=ROOT, hosts=None):
    """Send timestamped growth frames to the rooms' groups at a steady pace, as another process would
    (through the settings' channel layer, or one over the Redis URLs in hosts)."""
    from channels.layers import channel_layers, get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from chat.delivery.frames import grow

    channel_layers.backends.clear()  # a channels-redis layer belongs to one event loop: a new one per step
    layer = RedisPubSubChannelLayer(hosts=hosts) if hosts else get_channel_layer()
    kind = layer_type(app_dir)
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


def probe(servers, client, rooms, rate, per_room, app_dir=ROOT, hosts=None):
    """Offer `rate` frames/s for PROBE_SECONDS (through hosts, Redis URLs, if given); what arrived, how
    late, at what CPU cost (of all servers)."""
    servers = servers if isinstance(servers, list) else [servers]

    def server_cpu():
        return sum(cpu_seconds(server.process.pid) for server in servers)

    client.ask(cmd="probe", seconds=PROBE_SECONDS + 1.5)
    cpu_before, client_before, machine_before = server_cpu(), client.cpu_seconds(), machine_cpu_seconds()
    sent = asyncio.run(offer(rooms, rate, per_room, PROBE_SECONDS, app_dir, hosts))
    result = client.read()
    used, window = server_cpu() - cpu_before, PROBE_SECONDS + 1.5
    expected = sent * per_room
    step = {
        "offered": rate, "delivered_per_s": result["received"] / PROBE_SECONDS,
        "lost": expected - result["received"], "p50_ms": (result["p50"] or 0) * 1000,
        "p99_ms": (result["p99"] or float("inf")) * 1000,
        "server_cpu_per_s": used / window,
        "server_cpu_per_frame_us": used / max(1, result["received"]) * 1e6,
        "client_cpu_per_s": (client.cpu_seconds() - client_before) / window,
        # Every process of the machine (server, load client, this sender, Redis, anything else):
        # near the number of cores, the machine is what ran out.
        "machine_cpu_per_s": (machine_cpu_seconds() - machine_before) / window,
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
