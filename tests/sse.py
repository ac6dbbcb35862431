"""A Server-Sent Events reader over a plain HTTP connection, as curl -N sees the stream."""

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
