"""Server-Sent Events readers: over a plain HTTP connection, as curl -N sees the stream, and block by
block, every field and comment as sent."""

import http.client
import json
import time


def open_stream(base_url, method, path, body=None, headers=None):
    host = base_url.split("//", 1)[1]
    connection = http.client.HTTPConnection(host, timeout=20)
    connection.request(method, path, body=body, headers=headers or {})
    return connection, connection.getresponse()


def events(response):
    """Yield (name, data, received_at) per event; comment lines come as ("comment", text, t)."""
    name, data = "message", []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if line.startswith(":"):
            yield "comment", line[1:].strip(), time.monotonic()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield name, json.loads("\n".join(data)), time.monotonic()
            name, data = "message", []


async def blocks(lines):
    """Each block of an event stream as it arrives, from an async iterator of its lines (httpx's
    aiter_lines()): a dict of the block's fields (id, event, data, retry), a comment as "comment"."""
    block = {}
    async for line in lines:
        if line == "":
            if block:
                yield block
            block = {}
        elif line.startswith(":"):
            block["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            block[name] = f"{block[name]}\n{value}" if name in block else value
