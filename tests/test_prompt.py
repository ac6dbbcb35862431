"""Prompt building: system prompt, then the room's history before the reply, within the budget."""

import pytest

from bots.registry import BOTS
from chat.models import Message
from chat.prompt import CHARS_PER_TOKEN, build_prompt

pytestmark = pytest.mark.django_db

PIRATE = BOTS["PirateBot"]


def say(role, content, bot="PirateBot", **fields):
    return Message.objects.create(bot=bot, role=role, content=content, **fields)


def test_history_in_order_with_roles_and_without_the_reply_or_other_rooms():
    say("user", "Ahoy")
    say("assistant", "Ahoy yerself")
    say("user", "Other room", bot="BelleBot")
    say("user", "Where be the gold?")
    reply = say("assistant", "", status="pending")
    say("user", "A later message")
    prompt = build_prompt(PIRATE, reply, context_tokens=4096, max_tokens=256)
    assert prompt == [
        {"role": "system", "content": PIRATE.system_prompt},
        {"role": "user", "content": "Ahoy"},
        {"role": "assistant", "content": "Ahoy yerself"},
        {"role": "user", "content": "Where be the gold?"},
    ]


@pytest.mark.parametrize("context_tokens", [512, 1024, 2048])
def test_the_prompt_never_exceeds_the_context(context_tokens, settings):
    settings.PROMPT_HISTORY_CHARS = 10**6
    for i in range(200):
        say("user" if i % 2 == 0 else "assistant", f"message {i} " + "arr " * 50)
    reply = say("assistant", "", status="pending")
    prompt = build_prompt(PIRATE, reply, context_tokens=context_tokens, max_tokens=256)
    size = sum(len(m["content"]) for m in prompt)
    assert size <= (context_tokens - 256) * CHARS_PER_TOKEN
    assert prompt[1]["role"] == "user" and prompt[-1]["content"].startswith("message 199 ")


def test_an_oversized_last_message_is_cut_to_fit_keeping_its_end():
    say("user", "x" * 50_000 + "THE END")
    reply = say("assistant", "", status="pending")
    prompt = build_prompt(PIRATE, reply, context_tokens=1024, max_tokens=256)
    assert prompt[-1]["content"].endswith("THE END")
    assert sum(len(m["content"]) for m in prompt) <= (1024 - 256) * CHARS_PER_TOKEN
