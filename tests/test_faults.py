"""Every way an upstream fails ends the reply `failed`, with words a person understands and the
partial text kept; the room shows it with Retry, and Retry streams a fresh, complete answer."""

import pytest
from django.test import AsyncClient

from tests.rooms import finished, frames_until, grown_text, subscribe
from tests.test_rooms import post, rows

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f"doubloon{i} " for i in range(40)]

FAULTS = [
    # fault, tokens sent before it, the words the room shows
    ({"fault": "429"}, 0, "rate-limited"),
    ({"fault": "500"}, 0, "answered with an error (HTTP 500)"),
    ({"fault": "stall", "fault_after": 10}, 10, "timed out"),
    ({"fault": "drop", "fault_after": 10}, 10, "could not be reached or dropped the connection"),
    ({"fault": "malformed", "fault_after": 10}, 10, "could not read"),
    ({"fault": "error_object", "fault_after": 10}, 10, "The model overloaded mid-reply"),
]


@pytest.mark.parametrize(("script", "kept", "words"), FAULTS, ids=[f[0]["fault"] for f in FAULTS])
async def test_each_fault_fails_the_reply_clearly_and_retry_recovers(upstream, settings, script, kept, words):
    settings.OPENAI_TIMEOUT = 1.0
    upstream.will(tokens=TOKENS, rate=200, stall_seconds=3, **script)
    upstream.will(text="Fair winds: a fresh answer.", rate=200)
    page = await subscribe()
    asker = AsyncClient()
    await post("Where be the treasure?", client=asker)
    user, reply = await rows(room="PirateBot")
    frames = await frames_until(page, finished(reply.pk, "failed"))

    (failed,) = await rows(pk=reply.pk)
    assert failed.status == "failed"
    assert words in failed.error
    assert failed.content == "".join(TOKENS[:kept])
    assert failed.content.startswith(grown_text(frames, reply.pk))
    final = frames[-1][3]
    assert words.replace("'", "&#x27;") in final and 'class="retry"' in final

    response = await asker.post(f"/rooms/PirateBot/messages/{reply.pk}/retry")
    assert response.status_code == 303
    frames = await frames_until(page, finished(reply.pk))
    (retried,) = await rows(pk=reply.pk)
    assert (retried.status, retried.content, retried.error) == ("complete", "Fair winds: a fresh answer.", "")
    assert [m.pk for m in await rows(room="PirateBot")] == [user.pk, reply.pk]
    assert upstream.exchanges[-1].messages[1:] == [{"role": "user", "content": f"{user.author}: Where be the treasure?"}]


async def test_a_server_without_usage_still_completes(upstream):
    upstream.will(text="No usage from me.", usage=False)
    page = await subscribe()
    await post("Count yer tokens")
    _, reply = await rows(room="PirateBot")
    await frames_until(page, finished(reply.pk))
    (saved,) = await rows(pk=reply.pk)
    assert (saved.content, saved.prompt_tokens, saved.completion_tokens) == ("No usage from me.", None, None)


async def test_an_unconfigured_provider_fails_the_reply_with_the_variable_to_set(settings):
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = ""
    page = await subscribe()
    await post("Anyone there?")
    _, reply = await rows(room="PirateBot")
    await frames_until(page, finished(reply.pk, "failed"))
    (saved,) = await rows(pk=reply.pk)
    assert "OPENAI_API_KEY" in saved.error

