"""The supervisor of the local model's process: start it, watch it, restart it, end it with us.

One model process per web process, owned by one thread of that web process: the thread starts
the process, waits for it to answer, and when it dies (a native crash, an out-of-memory kill, or
the kill of a hung one) logs one line and starts another after a back-off. The process is told
to die with that thread's process (``model_server.die_with_parent``), and is ended at exit.
"""

import atexit
import http.client
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

logger = logging.getLogger(__name__)

# Back-off between restarts, in seconds: doubled after each quick death, reset after a long life.
FIRST_BACKOFF = 0.5
LONGEST_BACKOFF = 30
STEADY_AFTER = 60
# How long the process has to load the model and answer its first health check.
START_TIMEOUT = 120
# How long a live process has to answer a health check before it is taken for hung.
HEALTH_TIMEOUT = 3


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _describe(returncode):
    """How a process ended, for the log: its signal's name or its exit status."""
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class ModelProcess:
    """A supervised ``model_server`` child for one GGUF; ``url`` is its OpenAI-compatible /v1."""

    def __init__(self, model_path, *, alias, context_tokens, nice=0):
        self.command = [
            sys.executable, "-m", "bots.providers.model_server", "--model", str(model_path), "--alias", alias,
            "--n-ctx", str(context_tokens), "--parent-pid", str(os.getpid()), "--nice", str(nice),
        ]
        self.key = secrets.token_urlsafe(24)  # only Parley may use the model's port
        self.port = _free_port()
        self.process = None
        self.restarts = 0
        self._up = threading.Event()
        self._closing = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self):
        """Start the supervising thread (and so the process) unless it runs already."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._supervise, name="parley-model-supervisor", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def wait_up(self, timeout):
        """Block until the process answers (True), or timeout seconds pass (False): for scripts and tests."""
        self.start()
        return self._up.wait(timeout)

    def is_up(self):
        """Whether the process answers (as its last health check said)."""
        return self._up.is_set()

    def health(self, timeout=HEALTH_TIMEOUT):
        """The process's health answer (its pid and the load settings in force), or None if it gives none in time."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def check(self, pid):
        """After a request to process pid failed: True if that process is gone or was hung and is
        now killed (a new one is on its way), False if it still answers (the failure was not its death)."""
        process = self.process
        if process is None or process.pid != pid or process.poll() is not None:
            return True
        answer = self.health()
        if answer is not None and answer.get("pid") == pid:
            return False
        logger.warning("local model process %s did not answer within %s s: killing it", pid, HEALTH_TIMEOUT)
        process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too
        return True

    def close(self):
        """End the process and stop restarting it (at exit, and in tests)."""
        self._closing.set()
        self._end(self.process)

    @staticmethod
    def _end(process):
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _supervise(self):
        backoff = FIRST_BACKOFF
        while not self._closing.is_set():
            try:
                backoff = self._run_once(backoff)
            except Exception:  # noqa: BLE001 - supervision must outlive any one failure (say, fork after an OOM kill)
                logger.exception("local model process: supervision failed; trying again in %.1f s", backoff)
                self._up.clear()
                if self._closing.wait(backoff):
                    return
                backoff = min(backoff * 2, LONGEST_BACKOFF)

    def _run_once(self, backoff):
        """Start one process, mark it up once it answers, wait for its end; the next back-off."""
        started = time.monotonic()
        process = self.process = subprocess.Popen(
            [*self.command, "--port", str(self.port)], env={**os.environ, "PARLEY_MODEL_KEY": self.key},
            # Its own session: a Ctrl-C meant for the server does not kill the model mid-shutdown.
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        if self._closing.is_set():  # close() ran while it was starting
            self._end(process)
            return backoff
        up_at = self._await_health(process, started)
        if up_at is not None:
            self._up.set()
            logger.info("local model process %s answers on 127.0.0.1:%s", process.pid, self.port)
        returncode = process.wait()
        self._up.clear()
        if self._closing.is_set():
            return backoff
        if up_at is not None and time.monotonic() - up_at > STEADY_AFTER:
            backoff = FIRST_BACKOFF  # it served a good while: this is no crash loop
        self.restarts += 1
        logger.error(
            "local model process %s stopped (%s) after %.1f s; restarting in %.1f s (restart %d)",
            process.pid, _describe(returncode), time.monotonic() - started, backoff, self.restarts,
        )
        if up_at is None:
            self.port = _free_port()  # perhaps another program took the port meanwhile
        self._closing.wait(backoff)
        return min(backoff * 2, LONGEST_BACKOFF)

    def _await_health(self, process, started):
        """Poll the new process until it answers (the time it did), or kill it if it never does."""
        while time.monotonic() - started < START_TIMEOUT:
            if process.poll() is not None or self._closing.is_set():
                return None
            answer = self.health(timeout=1)
            if answer and answer.get("pid") == process.pid:
                return time.monotonic()
            time.sleep(0.1)
        logger.error("local model process %s did not answer within %s s: killing it", process.pid, START_TIMEOUT)
        process.kill()
        return None
