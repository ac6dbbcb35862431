"""A server's start loads what its first page and first reply would import: no request pays for it.

An import on the event loop holds every socket of the process; one on a view's thread holds the
interpreter lock the loop needs. Each case runs in a fresh interpreter, which has imported only
what the server's own start-up does.
"""

import json
import os
import subprocess
import sys

from tests.servers import ROOT

FIRST_USE = """
import asyncio, json, sys
import django
django.setup()
import project.asgi  # the server's start-up: the provider built, the page templates compiled
from bots.providers import get_provider
from chat.delivery.frames import render_message
from chat.models import Message

async def first_reply():
    get_provider().start()  # as the process's services start it, on the loop
    started = set(sys.modules)
    text = []
    async for chunk in get_provider().stream([{"role": "user", "content": "Hello"}], max_tokens=16):
        text.append(chunk.text)
    html = render_message(Message(pk=1, room="Lounge", role="user", author="Ann", content="".join(text)))
    return started, "".join(text), html

started, text, html = asyncio.run(first_reply())
print(json.dumps({"imported": sorted(set(sys.modules) - started), "text": text, "rendered": "message_1" in html and "Ahoy" in html}))
"""


def test_the_first_reply_and_its_partial_import_nothing(upstream_server):
    upstream_server.reset()
    upstream_server.will(text="Ahoy there, first reply.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_", "LOCAL_"))}
    env.update(LLM_PROVIDER="openai", OPENAI_API_KEY="sk-scripted", OPENAI_BASE_URL=upstream_server.base_url,
               DJANGO_SETTINGS_MODULE="project.settings")
    done = subprocess.run([sys.executable, "-c", FIRST_USE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["text"] == "Ahoy there, first reply." and found["rendered"]  # it did stream and render
    assert found["imported"] == [], " ".join(found["imported"])
