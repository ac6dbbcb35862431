"""Crashes end in a clear state: SIGTERM and SIGKILL mid-reply leave `interrupted`, Retry recovers."""

import signal
import time

import pytest

from chat.models import Message
from tests.servers import Browser, Daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

LONG = [f"plank{i} " for i in range(3000)]


def wait_for(predicate, timeout=10, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def reply_row():
    return Message.objects.filter(role="assistant").order_by("-id").first()


def post(server, content):
    """Post as a new guest; their browser, who alone (with moderators) may Stop and Retry the reply."""
    browser = Browser(server.url)
    status, _, _ = browser.post_form("/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": content})
    assert status == 303
    return browser


def test_sigterm_mid_reply_marks_it_interrupted_before_exit(upstream):
    upstream.will(tokens=LONG, rate=100)
    server = Daphne(provider_env(upstream))
    try:
        post(server, "Tell me a long tale")
        wait_for(lambda: len(reply_row().content) > 50)
    finally:
        output = server.stop(signal.SIGTERM)
    assert server.process.returncode is not None
    row = reply_row()
    assert row.status == "interrupted", output
    assert row.content and "".join(LONG).startswith(row.content)
    assert row.error == Message.INTERRUPTED_ERROR


def test_sigkill_mid_reply_is_interrupted_at_restart_and_retry_completes(upstream):
    upstream.will(tokens=LONG, rate=100)
    upstream.will(text="Back from the deep, matey.", rate=100)
    server = Daphne(provider_env(upstream))
    try:
        asker = post(server, "Tell me a long tale")
        wait_for(lambda: len(reply_row().content) > 50)
    finally:
        server.stop(signal.SIGKILL)
    assert reply_row().status == "streaming"  # nobody left to say otherwise

    # Alone (in-memory layer) the restarted process sweeps at once; beside others (Redis) it waits
    # until the reply has been silent for REPLY_STALE_AFTER, in case its owner is merely slow.
    restarted = Daphne(provider_env(upstream, REPLY_STALE_AFTER="1", REPLY_SWEEP_INTERVAL="0.5"))
    try:
        row = wait_for(lambda: (r := reply_row()).status == "interrupted" and r)
        assert row.content
        browser = Browser(restarted.url, cookies=asker.cookies)  # the asker, now served by the restarted process
        _, _, page = browser.get("/rooms/PirateBot/")
        assert f'id="message_{row.pk}" class="message assistant" data-status="interrupted"' in page
        assert 'class="retry"' in page
        status, _, _ = browser.post_form("/rooms/PirateBot/", f"/rooms/PirateBot/messages/{row.pk}/retry", {})
        assert status == 303
        done = wait_for(lambda: (r := reply_row()).status == "complete" and r)
        assert done.pk == row.pk and done.content == "Back from the deep, matey." and done.error == ""
        # The retried reply saw the person's message again, and not its own broken first try.
        said = upstream.exchanges[-1].messages[-1]
        assert said["role"] == "user" and said["content"].endswith(": Tell me a long tale")
    finally:
        restarted.stop()


def test_a_reply_queued_behind_a_long_one_is_not_taken_for_an_orphan(upstream):
    upstream.will(tokens=[f"plank{i} " for i in range(40)], rate=10)  # 4 s of steady streaming
    upstream.will(text="Second answer, matey.", rate=100)
    # Stale after 1.5 s, long before the first reply ends: the worker must keep the queue alive.
    server = Daphne(provider_env(upstream, REPLY_STALE_AFTER="1.5", REPLY_SWEEP_INTERVAL="0.3"))
    try:
        post(server, "Tell me a long tale")
        post(server, "Then a short one")
        wait_for(lambda: not Message.objects.filter(status__in=Message.ACTIVE).exists(), timeout=30, every=0.2)
    finally:
        server.stop()
    replies = list(Message.objects.filter(role="assistant").order_by("id"))
    assert [(r.status, r.error) for r in replies] == [("complete", ""), ("complete", "")]
    assert replies[1].content == "Second answer, matey."
