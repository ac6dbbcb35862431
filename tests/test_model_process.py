"""The embedded model in a supervised process of its own: a crash, a hang or a Stop of the model
costs one reply at most, never the server; shutting the server down leaves no model behind."""

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
import websockets
from asgiref.sync import sync_to_async

from bots.providers.local import CRASHED, LocalProvider, model_process
from chat.models import Message
from tests.rooms import finished, grows
from tests.servers import Browser, daphne
from tests.test_end_to_end import read_frames, room_rows

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The embedded defaults (no provider named, no API key), with replies long enough to hurt mid-way.
LOCAL = {"LLM_PROVIDER": None, "OPENAI_API_KEY": None, "OPENAI_BASE_URL": None, "LOCAL_MODEL_PATH": None,
         "REPLY_MAX_TOKENS": "400", "REPLY_FLUSH_INTERVAL": "0.05",
         "RATE_LIMIT_PER_CLIENT": "10000", "RATE_LIMIT_PER_ROOM": "10000"}


def model_pids(server):
    """The model processes the server has started, in order, as its log names them."""
    return [int(pid) for pid in re.findall(r"local model process (\d+) answers", server.output())]


def model_processes_of(parent_pid):
    """Live model processes whose parent was parent_pid, from the process table."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bots.providers.model_server" in command and str(parent_pid).encode() in command and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def alive(pid):
    """True while pid runs (a zombie left for its parent to reap counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def cpu_seconds(pid):
    """User plus system CPU time pid has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until(condition, timeout=60, what="the condition"):
    """Wait until condition() holds, looking every 50 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def frames_until(socket, done, timeout=60):
    """The socket's frames up to the first for which done() holds (the model is slower than the upstream)."""
    return read_frames(socket, done, timeout)


@sync_to_async
def row(pk):
    return Message.objects.get(pk=pk)


async def post(browser, text, bot="PirateBot"):
    status, _, _ = await sync_to_async(browser.post_form)(f"/rooms/{bot}/", f"/rooms/{bot}/messages", {"content": text})
    assert status == 303


async def retry(browser, pk, bot="PirateBot"):
    status, _, _ = await sync_to_async(browser.post_form)(f"/rooms/{bot}/", f"/rooms/{bot}/messages/{pk}/retry", {})
    assert status == 303


def sockets(server, *rooms):
    return [websockets.connect(f"{server.ws_url}/ws/rooms/{room}/", origin=server.url) for room in rooms]


async def test_the_model_is_loaded_without_extra_buffer_types_in_its_own_process(settings):
    """On a CPU that advertises AMX its repacked-weights path crashes; the setting that avoids it is in force."""
    settings.LLM_PROVIDER, settings.OPENAI_API_KEY, settings.LOCAL_MODEL_PATH = "", "", ""
    provider = LocalProvider()
    assert await asyncio.to_thread(provider.process.wait_up, 60)
    health = await asyncio.to_thread(provider.process.health)
    assert health == {"pid": provider.process.pid, "model": provider.model, "use_extra_bufts": False}
    assert provider.process.pid != os.getpid()
    provider.process.close()
    model_process.cache_clear()


def niceness(pid):
    """The nice value of every thread of pid, as a set."""
    return {os.getpriority(os.PRIO_PROCESS, int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


async def test_the_model_process_computes_local_model_nice_below_its_web_process():
    with daphne({**LOCAL, "LOCAL_MODEL_NICE": "7"}) as server:
        await until(lambda: model_pids(server), what="the model process")
        (model,) = model_pids(server)
        web = os.getpriority(os.PRIO_PROCESS, server.process.pid)
        assert niceness(model) == {min(19, web + 7)}


RESTARTING = re.compile(r"local model process (\d+) stopped \((\w+)\) after [\d.]+ s; restarting in ([\d.]+) s \(restart (\d+)\)")


async def test_a_model_process_that_keeps_dying_is_restarted_after_half_a_second_then_doubling():
    with daphne(LOCAL) as server:
        await until(lambda: model_pids(server), what="the model process")
        pids = model_pids(server)  # the first, once it answers; each next one killed as soon as it runs
        gaps = []
        for _ in range(3):
            os.kill(pids[-1], signal.SIGKILL)
            killed = time.monotonic()
            while not (new := [pid for pid in model_processes_of(server.process.pid) if pid not in pids]):
                assert time.monotonic() - killed < 10, "no model process was started again"
                await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - killed)
            pids += new
        # One log line per restart, each saying the back-off it waits: 0.5 s, then doubling.
        await until(lambda: len(RESTARTING.findall(server.output())) == 3, timeout=10, what="the third restart's log line")
        assert RESTARTING.findall(server.output()) == [
            (str(pids[0]), "SIGKILL", "0.5", "1"), (str(pids[1]), "SIGKILL", "1.0", "2"), (str(pids[2]), "SIGKILL", "2.0", "3"),
        ]
        # And waits it: each restart came that long after the death, and before the next doubling.
        for gap, backoff in zip(gaps, (0.5, 1.0, 2.0)):
            assert backoff <= gap < 2 * backoff, (gaps, backoff)
        # The fourth process, left alone, loads the model and answers.
        await until(lambda: len(model_pids(server)) == 2, what="the fourth model process to answer")
        assert model_pids(server) == [pids[0], pids[3]]

async def test_a_native_crash_of_the_model_costs_one_reply_and_retry_completes():
    with daphne(LOCAL) as server:
        await until(lambda: model_pids(server), what="the model process")
        (first_model,) = model_pids(server)
        one, two, belle = sockets(server, "PirateBot", "PirateBot", "BelleBot")
        async with one as one, two as two, belle as belle:
            browser = Browser(server.url)
            await post(browser, "Tell me a long story about your ship")
            _, reply = await room_rows()
            await frames_until(one, grows(reply.pk))  # the model is mid-reply

            os.kill(first_model, signal.SIGSEGV)
            seen = await asyncio.gather(*(frames_until(ws, finished(reply.pk, "failed")) for ws in (one, two)))
            assert CRASHED in seen[0][-1][3] and seen[0][-1] == seen[1][-1]
            failed = await row(reply.pk)
            assert (failed.status, failed.error) == ("failed", CRASHED)
            assert failed.content.strip(), "the partial text is kept"

            # The server lives, every socket of every room is still open, and a new model answers.
            assert server.process.poll() is None
            await asyncio.gather(*(ws.ping() for ws in (one, two, belle)))
            await until(lambda: len(model_pids(server)) == 2, what="the restarted model process")
            assert model_pids(server)[1] != first_model and not alive(first_model)
            assert len(re.findall(r"local model process \d+ stopped \(SIGSEGV\)", server.output())) == 1

            await retry(browser, reply.pk)
            await frames_until(one, finished(reply.pk, "complete"))
            assert (await row(reply.pk)).status == "complete"


async def test_a_hung_model_fails_its_reply_after_the_timeout_and_is_replaced():
    with daphne({**LOCAL, "LOCAL_MODEL_TIMEOUT": "3"}) as server:
        await until(lambda: model_pids(server), what="the model process")
        (hung,) = model_pids(server)
        try:
            async with sockets(server, "PirateBot")[0] as socket:
                browser = Browser(server.url)
                await post(browser, "Tell me a long story about your ship")
                _, reply = await room_rows()
                await frames_until(socket, grows(reply.pk))

                os.kill(hung, signal.SIGSTOP)
                stopped = time.monotonic()
                frames = await frames_until(socket, finished(reply.pk, "failed"), timeout=30)
                assert time.monotonic() - stopped >= 3 - 0.5  # the timeout, not at once
                assert CRASHED in frames[-1][3]

                await until(lambda: not alive(hung), what="the hung process to be killed")
                await until(lambda: len(model_pids(server)) == 2, what="its replacement")
                await retry(browser, reply.pk)
                # A fresh process loads the model, then writes up to 400 tokens: on a busy two-core
                # machine that has taken over a minute.
                await frames_until(socket, finished(reply.pk, "complete"), timeout=180)
        finally:
            if alive(hung):
                os.kill(hung, signal.SIGKILL)


async def a_reply_still_computing(browser, socket, model, tries=3):
    """A reply the model has computed for a while and not ended: the model picks its answer's length,
    and now and then a short one ends before Stop is sent, so ask again (up to tries times)."""
    for _ in range(tries):
        await post(browser, "Tell me a long story about your ship")
        reply = [m for m in await room_rows() if m.role == "assistant"][-1]
        await frames_until(socket, grows(reply.pk))
        busy = cpu_seconds(model)
        async with asyncio.timeout(30):
            while cpu_seconds(model) - busy < 0.2 and (await row(reply.pk)).status == "streaming":
                await asyncio.sleep(0.05)
        if (await row(reply.pk)).status == "streaming":
            return reply
    raise AssertionError(f"the model ended each of {tries} replies before it had computed for 0.2 s")


async def test_stop_ends_the_computation_in_the_model_process_within_a_second():
    with daphne(LOCAL) as server:
        await until(lambda: model_pids(server), what="the model process")
        (model,) = model_pids(server)
        async with sockets(server, "PirateBot")[0] as socket:
            browser = Browser(server.url)
            reply = await a_reply_still_computing(browser, socket, model)

            status, _, _ = await sync_to_async(browser.post_form)(
                "/rooms/PirateBot/", f"/rooms/PirateBot/messages/{reply.pk}/stop", {}
            )
            assert status == 303
            stop = time.monotonic()
            await frames_until(socket, finished(reply.pk, "cancelled"))
            # From one second after Stop on, the model process computes nothing for the reply.
            await asyncio.sleep(max(0, stop + 1 - time.monotonic()))
            after = cpu_seconds(model)
            await asyncio.sleep(1)
            assert cpu_seconds(model) - after < 0.1, "the model kept computing after Stop"
            assert (await row(reply.pk)).status == "cancelled"


async def test_a_server_killed_outright_takes_its_model_process_with_it():
    """SIGKILL runs no clean-up at all: the parent-death signal Linux sends the model ends it."""
    with daphne(LOCAL) as server:
        await until(lambda: model_pids(server), what="the model process")
        (model,) = model_pids(server)
        server.stop(signal.SIGKILL)
        await until(lambda: not alive(model), timeout=10, what="the model process to die with its server")
        assert model_processes_of(server.process.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutting_the_server_down_leaves_no_model_process(sig):
    with daphne(LOCAL) as server:
        await until(lambda: model_pids(server), what="the model process")
        async with sockets(server, "PirateBot")[0] as socket:
            (model,) = model_pids(server)
            reply = await a_reply_still_computing(Browser(server.url), socket, model)  # shut down mid-reply
            assert model_processes_of(server.process.pid) == model_pids(server)
            server.stop(sig)
        assert server.process.returncode is not None
        assert model_processes_of(server.process.pid) == []
        assert not any(alive(pid) for pid in model_pids(server))
        assert (await row(reply.pk)).status == "interrupted"
