"""A scripted OpenAI-compatible server on loopback: real sockets, the SDK's real wire format.

Tests tell it what the next completion requests get (text, pace, a fault) and read back what
it saw: request bodies, when each token went out, when the client closed the connection.
"""

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field

TOKEN = re.compile(r"\s*\S+|\s+")


def tokenize(text):
    """Split text into word-sized tokens that join back to it exactly."""
    return TOKEN.findall(text)


@dataclass
class Script:
    """What one completion request gets."""

    text: str = "Ahoy! The scripted upstream answers."
    tokens: list | None = None  # explicit tokens; default: text split into words
    rate: float | None = None  # tokens per second; None: as fast as the socket takes them
    steady: bool = True  # paced from the start (the rate holds under load); False: each gap at least 1/rate
    fault: str | None = None  # 429, 500, stall, drop, malformed, error_object
    fault_after: int = 0  # tokens sent before a mid-stream fault
    usage: bool = True  # send a usage chunk when the client asks for one
    stall_seconds: float = 30.0
    retry_after: str = "0"
    reject_stream_options: bool = False  # answer 400 when asked for usage, as some servers do

    def token_list(self):
        return list(self.tokens) if self.tokens is not None else tokenize(self.text)


@dataclass
class Exchange:
    """One request as the upstream saw it."""

    body: dict
    opened_at: float
    authorization: str = ""  # the Authorization header the client sent
    sent: list = field(default_factory=list)  # (monotonic time, token)
    closed_at: float | None = None  # when the client closed its side, if it did first
    finished_at: float | None = None  # when the upstream finished answering
    usage: dict | None = None  # the usage chunk it sent, if the client asked for one

    @property
    def messages(self):
        return self.body.get("messages", [])


class ScriptedUpstream:
    """Runs in its own thread and event loop, so sync tests, async tests and subprocesses can use it."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.default = Script()
        self.queue = []
        self.exchanges = []
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._loop = None
        self._server = None
        self._thread = threading.Thread(target=self._run, name="scripted-upstream", daemon=True)

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}/v1"

    def start(self):
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self):
        if self._loop:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self):
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def will(self, **script):
        """Queue the answer to the next completion request (later calls queue later answers)."""
        with self._lock:
            self.queue.append(Script(**script))

    def reset(self):
        with self._lock:
            self.queue.clear()
            self.exchanges.clear()
            self.default = Script()

    def _next_script(self):
        with self._lock:
            return self.queue.pop(0) if self.queue else self.default

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, reader, writer):
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        if method == "GET" and path.endswith("/models"):
            return await self._json(writer, 200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        if not (method == "POST" and path.endswith("/chat/completions")):
            return await self._json(writer, 404, {"error": {"message": f"no route {path}"}})
        exchange = Exchange(
            body=json.loads(body or b"{}"), opened_at=time.monotonic(), authorization=headers.get("authorization", "")
        )
        with self._lock:
            self.exchanges.append(exchange)
        script = self._next_script()
        if script.reject_stream_options and "stream_options" in exchange.body:
            return await self._json(
                writer, 400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                                        "type": "invalid_request_error"}},
            )
        if script.fault == "429":
            return await self._json(
                writer, 429, {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}},
                extra={"Retry-After": script.retry_after},
            )
        if script.fault == "500":
            return await self._json(writer, 500, {"error": {"message": "The server had an error", "type": "server_error"}})
        watcher = asyncio.ensure_future(self._watch_close(reader, exchange))
        try:
            await self._stream(writer, exchange, script)
        except ConnectionError:
            # The client went away between two writes, before the watcher saw its EOF.
            exchange.closed_at = exchange.closed_at or time.monotonic()
        finally:
            exchange.finished_at = time.monotonic()
            watcher.cancel()

    async def _watch_close(self, reader, exchange):
        """The client sends nothing more after its request: EOF means it closed the connection."""
        await reader.read()
        exchange.closed_at = time.monotonic()

    async def _json(self, writer, status, payload, extra=None):
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), "Connection": "close"}
        headers.update(extra or {})
        writer.write(self._head(status, headers) + data)
        await writer.drain()

    @staticmethod
    def _head(status, headers):
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}[status]
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        return "\r\n".join(lines).encode()

    async def _stream(self, writer, exchange, script):
        headers = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked", "Connection": "close"}
        writer.write(self._head(200, headers))
        model = exchange.body.get("model", "scripted")

        async def event(data):
            payload = f"data: {data}\n\n".encode()
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            await writer.drain()

        def chunk(delta, finish=None):
            return json.dumps({
                "id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })

        tokens = script.token_list()
        interval = 1 / script.rate if script.rate else 0
        start = last = time.monotonic()
        for index, token in enumerate(tokens):
            if script.fault and index == script.fault_after:
                return await self._fault(writer, event, script, exchange)
            if interval:
                # Steady: paced from the start, so the rate holds under load (a late token is followed
                # at once by the next). Otherwise from the last write, so every gap is at least 1/rate.
                due = start + index * interval if script.steady else last + interval * (index > 0)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            if exchange.closed_at is not None:
                return
            # Noted before it is written: a client on another thread can read it before this one
            # runs again, and a token is never seen before it was made (or before it is in `sent`).
            last = time.monotonic()
            exchange.sent.append((last, token))
            await event(chunk({"role": "assistant", "content": token} if index == 0 else {"content": token}))
        if script.fault:
            return await self._fault(writer, event, script, exchange)
        await event(chunk({}, "stop"))
        if script.usage and (exchange.body.get("stream_options") or {}).get("include_usage"):
            # Known numbers: a token per four characters of the prompt's messages, one per token sent.
            usage = {"prompt_tokens": sum(len(m.get("content", "")) // 4 for m in exchange.messages),
                     "completion_tokens": len(tokens)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            exchange.usage = usage
            await event(json.dumps({"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                                    "created": int(time.time()), "model": model, "choices": [], "usage": usage}))
        await event("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _fault(self, writer, event, script, exchange):
        if script.fault == "stall":
            deadline = time.monotonic() + script.stall_seconds
            while exchange.closed_at is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        elif script.fault == "drop":
            writer.transport.abort()  # the connection dies mid-stream, no terminating chunk
        elif script.fault == "malformed":
            await event('{"id": "chatcmpl-scripted", "choices": [{"delta": {"content": "broken')
            await asyncio.sleep(0.05)
        elif script.fault == "error_object":
            await event(json.dumps({"error": {"message": "The model overloaded mid-reply", "type": "server_error"}}))
            await asyncio.sleep(0.05)
        else:
            raise ValueError(f"unknown fault {script.fault!r}")
