"""A TCP proxy that cuts every connection through it at random every 1 to 3 s, sometimes mid-frame.

It runs in a thread with its own event loop, so sync tests, async tests and benchmarks can use it.
A cut resets both sides (no close handshake); a mid-frame cut first passes on only part of what
the server had just sent, so the client is left holding half a WebSocket frame or SSE event.
"""

import asyncio
import random
import threading

CHUNK = 65536


class DroppingProxy:
    """Listens on a loopback port and forwards to target_port, cutting each connection after a
    random lifetime in [shortest, longest] seconds; `cuts` and `mid_frame` count what it did."""

    def __init__(self, target_port, shortest=1.0, longest=3.0, seed=None, port=0):
        self.target_port = target_port
        self.listen_port = port  # 0: any free port
        self.shortest, self.longest = shortest, longest
        self.random = random.Random(seed)
        self.cuts = self.mid_frame = self.connections = 0
        self.port = None
        self.loop = None
        self._ready = threading.Event()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self._run, name="dropping-proxy", daemon=True).start()
        self._ready.wait(10)
        return self

    def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())

    async def _serve(self):
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.listen_port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        # The connections still open end with the proxy, not as tasks destroyed while pending.
        rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _connection(self, client_reader, client_writer):
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        lifetime = self.random.uniform(self.shortest, self.longest)
        mid_frame = self.random.random() < 0.5
        cut = asyncio.Event()  # set: the server's next chunk is passed on by half, then the pipe ends
        to_server = asyncio.create_task(self._pipe(client_reader, server_writer))
        to_client = asyncio.create_task(self._pipe(server_reader, client_writer, cut if mid_frame else None))
        try:
            done, _ = await asyncio.wait({to_server, to_client}, timeout=lifetime, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                self.cuts += 1
                if mid_frame:
                    # Let the server's next chunk through by half (wait at most half a second for one).
                    cut.set()
                    await asyncio.wait({to_client}, timeout=0.5)
        finally:
            for task in (to_server, to_client):
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.transport.abort()
            await asyncio.gather(to_server, to_client, return_exceptions=True)

    async def _pipe(self, reader, writer, cut=None):
        while chunk := await reader.read(CHUNK):
            if cut is not None and cut.is_set():
                if len(chunk) > 1:
                    self.mid_frame += 1
                    writer.write(chunk[: len(chunk) // 2])
                    await writer.drain()
                return
            writer.write(chunk)
            await writer.drain()


def main(target_port):
    """The proxy as a process of its own (bench-drops): prints its port, and what it did once stdin closes."""
    import json
    import sys

    proxy = DroppingProxy(target_port).start()
    print(json.dumps({"port": proxy.port}), flush=True)
    sys.stdin.read()
    proxy.stop()
    print(json.dumps({"cuts": proxy.cuts, "mid_frame": proxy.mid_frame, "connections": proxy.connections}), flush=True)


if __name__ == "__main__":
    import sys

    main(int(sys.argv[1]))
