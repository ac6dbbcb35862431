"""Parley's /v1 as OpenAI's own SDK sees it, against a real Daphne: each bot in its persona, streaming
or not, sync or async; OpenAI's errors for a wrong key, an unknown model and too many requests."""

import json

import openai
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from bots import registry
from chat.models import ApiKey
from tests.servers import daphne
from tests.sse import open_stream
from tests.test_end_to_end import provider_env
from tests.upstream import tokenize

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "Who are you?"}]


def usage_of(completion):
    """A completion's usage as the upstream's usage chunk spells it."""
    usage = completion.usage
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens}


async def test_the_openai_sdk_talks_to_each_bot_in_its_persona(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("SDK test")
    with daphne(provider_env(upstream)) as server:
        sync = openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        asynchronous = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        assert [m.id for m in await sync_to_async(sync.models.list)()] == [bot.key for bot in registry.bots()]

        for index, bot in enumerate(registry.bots()):
            upstream.will(text=f"Plain answer from {bot.name}.")
            upstream.will(text=f"Streamed answer from {bot.name}.")
            upstream.will(text=f"Async answer from {bot.name}.")
            upstream.will(text=f"Async stream from {bot.name}.")

            done = await sync_to_async(sync.chat.completions.create)(model=bot.key, messages=ASK)
            assert done.object == "chat.completion" and done.model == bot.key
            assert done.choices[0].message.content == f"Plain answer from {bot.name}."
            assert done.choices[0].finish_reason == "stop" and usage_of(done) == upstream.exchanges[-1].usage

            def stream_sync():
                chunks = list(sync.chat.completions.create(
                    model=bot.key, messages=ASK, stream=True, stream_options={"include_usage": True}
                ))
                return chunks

            chunks = await sync_to_async(stream_sync)()
            assert all(c.object == "chat.completion.chunk" for c in chunks)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Streamed answer from {bot.name}."
            assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # it streamed
            assert chunks[-1].choices == [] and usage_of(chunks[-1]) == upstream.exchanges[-1].usage

            done = await asynchronous.chat.completions.create(model=bot.key, messages=ASK)
            assert done.choices[0].message.content == f"Async answer from {bot.name}."
            text = ""
            async for chunk in await asynchronous.chat.completions.create(model=bot.key, messages=ASK, stream=True):
                assert chunk.usage is None  # not asked for
                text += chunk.choices[0].delta.content or ""
            assert text == f"Async stream from {bot.name}."

            # The bot's persona came first, then the caller's messages, every time.
            for exchange in upstream.exchanges[4 * index:]:
                assert exchange.messages == [{"role": "system", "content": bot.persona}, *ASK]

        # The caller's own system message follows the persona.
        upstream.will(text="Aye.")
        await asynchronous.chat.completions.create(
            model="PirateBot", messages=[{"role": "system", "content": "Answer in one word."}, *ASK]
        )
        assert upstream.exchanges[-1].messages[0]["content"] == registry.find_bot("PirateBot").persona + "\n\nAnswer in one word."
        # Every request's tokens, as the upstream reported them, are counted on the key: asked with
        # usage or without, streamed or not.
        assert len(upstream.exchanges) == 4 * len(registry.bots()) + 1 and all(e.usage for e in upstream.exchanges)
        key = await ApiKey.objects.aget(name="SDK test")
        assert (key.prompt_tokens, key.completion_tokens) == (
            sum(e.usage["prompt_tokens"] for e in upstream.exchanges), sum(e.usage["completion_tokens"] for e in upstream.exchanges)
        )
        # One completion token per word the upstream sent ("Plain answer from Pirate." is four).
        said = [f"{kind} from {b.name}." for b in registry.bots()
                for kind in ("Plain answer", "Streamed answer", "Async answer", "Async stream")] + ["Aye."]
        assert key.completion_tokens == sum(len(tokenize(text)) for text in said)


async def test_openai_errors_for_a_wrong_key_an_unknown_model_bad_bodies_and_too_many_requests(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("Errors test")
    with daphne(provider_env(upstream, RATE_LIMIT_PER_CLIENT="3")) as server:
        wrong = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="parley_wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="PirateBot", messages=ASK)
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.chat.completions.create(model="gpt-4o", messages=ASK)
        assert unknown.value.body["param"] == "model" and "PirateBot" in unknown.value.body["message"]

        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        good = b'{"model": "PirateBot", "messages": [{"role": "user", "content": "hi"}]}'
        bad = [(body, 400) for body in [
            b"{oops", b"[]", b"\xff", b'{"model": "PirateBot"}', b'{"model": "PirateBot", "messages": []}',
            b'{"model": "PirateBot", "messages": "hi"}', b'{"model": "PirateBot", "messages": [1]}',
            b'{"model": "PirateBot", "messages": [{"role": "tool", "content": "x"}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": ""}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": 5}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            b'{"model": "PirateBot", "messages": [{"role": "assistant", "content": "last"}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            json.dumps({"model": "PirateBot", "messages": [{"role": "user", "content": "z" * 5000}]}).encode(),
            b'{"model": null, "messages": [{"role": "user", "content": "hi"}]}',
        ]]
        # Over SSE_MAX_BODY (its default here): 413, whatever the body says.
        bad.append((good + b" " * settings.SSE_MAX_BODY, 413))
        for body, status in bad:
            _, response = await sync_to_async(open_stream)(server.url, "POST", "/v1/chat/completions", body, headers)
            assert response.status == status, body[:80]
            error = json.loads(response.read())["error"]
            assert error["message"] and error["type"] == "invalid_request_error", body[:80]
        # Not JSON by its content type: 415, the body unread.
        _, response = await sync_to_async(open_stream)(
            server.url, "POST", "/v1/chat/completions", good, {**headers, "Content-Type": "text/plain"}
        )
        assert response.status == 415
        assert json.loads(response.read())["error"]["message"] == 'Send JSON with "Content-Type: application/json".'
        assert upstream.exchanges == []

        for _ in range(3):
            upstream.will(text="Arr.")
            await client.chat.completions.create(model="PirateBot", messages=ASK)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="PirateBot", messages=ASK)
        assert int(limited.value.response.headers["Retry-After"]) > 0


async def test_a_body_over_django_s_upload_limit_gets_an_openai_error(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("Big body")
    body = b'{"model": "PirateBot", "messages": [{"role": "user", "content": "hi"}]}' + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    with daphne(provider_env(upstream)) as server:
        _, response = await sync_to_async(open_stream)(
            server.url, "POST", "/v1/chat/completions", body, {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        )
        assert (response.status, response.getheader("Content-Type")) == (413, "application/json")
        assert json.loads(response.read())["error"]["type"] == "invalid_request_error"
    assert upstream.exchanges == []
