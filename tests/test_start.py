"""A server's start loads what its first reply and first partial would import: no request pays for it.

An import on the event loop holds every socket of the process; one on a view's thread holds the
interpreter lock the loop needs. The check runs in a fresh interpreter, which has imported only
what the server's start-up module and the provider's start() import.
"""

import json
import os
import subprocess
import sys

from tests.servers import ROOT

FIRST_USE = """
import asyncio, json, sys
import project.asgi  # the server's start-up module: the provider built, the views imported, the templates compiled
from bots.providers import get_provider

async def first_reply():
    get_provider().start()  # what the process's services run on the loop before the first connection
    started = set(sys.modules)
    from chat.delivery.frames import render_message
    from chat.models import Message

    text = []
    async for chunk in get_provider().stream([{"role": "user", "content": "Hello"}], max_tokens=16):
        text.append(chunk.text)
    said = render_message(Message(pk=1, room="Lounge", role="user", author="Ann", content="Hello"))
    # A finished reply's partial: Markdown, its votes; no bot, so that no row is read for its name.
    answered = render_message(Message(pk=2, room="Lounge", role="assistant", bot=None, status="complete",
                                      content="".join(text) + "\\n\\n| a | b |\\n|---|---|\\n| *1* | `2` |"))
    imported = sorted(set(sys.modules) - started)
    return imported, "".join(text), "message_1" in said and "<table>" in answered

imported, text, rendered = asyncio.run(first_reply())
print(json.dumps({"imported": imported, "text": text, "rendered": rendered}))
"""


def test_the_first_reply_and_its_partials_import_nothing(upstream_server):
    upstream_server.reset()
    upstream_server.will(text="Ahoy there, first reply.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_", "LOCAL_", "PYTHON"))}
    env.update(LLM_PROVIDER="openai", OPENAI_API_KEY="sk-scripted", OPENAI_BASE_URL=upstream_server.base_url,
               DJANGO_SETTINGS_MODULE="project.settings", LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-c", FIRST_USE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["text"] == "Ahoy there, first reply." and found["rendered"]  # it did stream and render
    assert found["imported"] == [], " ".join(found["imported"])
