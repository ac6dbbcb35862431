"""Prompt building: system prompt, then the room's history before the reply, within the budget."""

import pytest
from django.utils import timezone

from bots.providers.base import estimate_tokens
from bots.providers.local import LocalProvider, default_model_path
from bots import registry
from chat.models import Message
from chat.replies.prompt import fit, recent_history

pytestmark = pytest.mark.django_db

def build_prompt(bot, reply, **budget):
    """The prompt the reply job builds for reply: the room's history before it, fitted."""
    history, _ = recent_history(reply.room, reply.pk, bot)
    return fit(bot, history, **budget)


def say(role, content, room="PirateBot", **fields):
    if role == "assistant":
        fields.setdefault("bot", room)
    return Message.objects.create(room=room, role=role, content=content, **fields)


def test_history_in_order_with_who_said_what_and_without_the_reply_or_other_rooms():
    say("user", "Ahoy", author="Ana")
    say("assistant", "Ahoy yerself")
    say("user", "Other room", room="BelleBot")
    say("user", "Where be the gold?", author="Ben")
    reply = say("assistant", "", status="pending")
    say("user", "A later message")
    prompt = build_prompt(registry.find_bot("PirateBot"), reply, context_tokens=4096, max_tokens=256)
    assert prompt == [
        {"role": "system", "content": registry.find_bot("PirateBot").persona},
        {"role": "user", "content": "Ana: Ahoy"},
        {"role": "assistant", "content": "Ahoy yerself"},
        {"role": "user", "content": "Ben: Where be the gold?"},
    ]


def test_a_bot_sees_its_own_replies_as_its_own_and_others_as_lines_of_the_room():
    say("user", "@BelleBot @PirateBot hello", author="Ana")
    say("assistant", "Why, hello, sugar.", bot="BelleBot")
    say("assistant", "Arr.", bot="PirateBot")
    say("assistant", "Removed words", bot="BelleBot", removed_at=timezone.now())
    say("user", "@BelleBot again?", author="Ana")
    reply = say("assistant", "", status="pending", bot="BelleBot")
    prompt = build_prompt(registry.find_bot("BelleBot"), reply, context_tokens=4096, max_tokens=256)
    assert prompt == [
        {"role": "system", "content": registry.find_bot("BelleBot").persona},
        {"role": "user", "content": "Ana: @BelleBot @PirateBot hello"},
        {"role": "assistant", "content": "Why, hello, sugar."},
        {"role": "user", "content": "PirateBot: Arr."},
        {"role": "user", "content": "Ana: @BelleBot again?"},
    ]


@pytest.mark.parametrize("context_tokens", [512, 1024, 2048])
def test_the_prompt_never_exceeds_the_context(context_tokens, settings):
    settings.PROMPT_HISTORY_CHARS = 10**6
    for i in range(200):
        say("user" if i % 2 == 0 else "assistant", f"message {i} " + "arr " * 10)
    reply = say("assistant", "", status="pending")
    prompt = build_prompt(registry.find_bot("PirateBot"), reply, context_tokens=context_tokens, max_tokens=256)
    assert sum(estimate_tokens(m["content"]) + 8 for m in prompt) <= context_tokens - 256
    assert prompt[1]["role"] == "user" and prompt[-1]["content"].startswith("message 199 ")


def test_an_oversized_last_message_is_cut_to_fit_keeping_its_end():
    say("user", "x" * 50_000 + "THE END")
    reply = say("assistant", "", status="pending")
    prompt = build_prompt(registry.find_bot("PirateBot"), reply, context_tokens=1024, max_tokens=256)
    assert prompt[-1]["content"].endswith("THE END")
    assert sum(estimate_tokens(m["content"]) + 8 for m in prompt) <= 1024 - 256
    assert len(prompt[-1]["content"]) > 500  # cut to fit, not thrown away


@pytest.fixture(scope="module")
def smollm2_tokens():
    """Count a prompt's tokens as the local model sees it: its own chat template and tokenizer."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)  # no weights: quick

    def special(token):
        return model.detokenize([token], special=True).decode()

    template = Jinja2ChatFormatter(
        model.metadata["tokenizer.chat_template"], eos_token=special(model.token_eos()), bos_token=special(model.token_bos())
    )

    def count(messages):
        # The whole prompt, ending where the reply begins, tokenized as llama-cpp-python does.
        return len(model.tokenize(template(messages=messages).prompt.encode(), add_bos=True, special=True))

    yield count
    model.close()


HISTORIES = [
    pytest.param(lambda i: f"Message {i}: arr, me ship be the Salty Kraken with three masts and forty cannon, "
                 "and the crew be singing shanties all night long.", id="prose"),
    pytest.param(lambda i: f"Ahoy {i}!", id="short-chat"),
    pytest.param(lambda i: f"def f{i}(x):\n    return [n ** 2 for n in range(x) if n % 3 == 0]\n", id="code"),
    pytest.param(lambda i: f"Nachricht {i}: Die Straßenbahnhaltestelle liegt gegenüber dem Hauptbahnhof.", id="german"),
    pytest.param(lambda i: f"第{i}条消息：海盗船在黎明时分起航，船上装满了朗姆酒。", id="chinese"),
]


@pytest.mark.slow
@pytest.mark.parametrize("message", HISTORIES)
@pytest.mark.parametrize("counter", ["model", "estimate"])
def test_the_local_model_s_prompt_and_reply_fit_its_context_in_its_own_tokens(message, counter, settings, smollm2_tokens):
    settings.PROMPT_HISTORY_CHARS = 10**6  # the context, not the cost cap, is what binds here
    for i in range(400):
        say("user" if i % 2 == 0 else "assistant", message(i))
    reply = say("assistant", "", status="pending")
    local = LocalProvider()
    # The local provider counts with the model's tokenizer; the estimate is what servers whose
    # tokenizer nobody here knows get, and it must be safe for this (wasteful) tokenizer too.
    count = local.count_tokens if counter == "model" else estimate_tokens
    prompt = build_prompt(
        registry.find_bot("PirateBot"), reply, context_tokens=local.context_tokens, max_tokens=settings.REPLY_MAX_TOKENS, count_tokens=count
    )
    assert len(prompt) > 10  # a long history, cut to fit: not just the system prompt
    tokens = smollm2_tokens(prompt)
    assert tokens + settings.REPLY_MAX_TOKENS <= local.context_tokens, f"{tokens} prompt tokens"
    if counter == "model":  # and the model's own count wastes little of the context
        assert tokens + settings.REPLY_MAX_TOKENS > 0.8 * local.context_tokens, f"{tokens} prompt tokens"
