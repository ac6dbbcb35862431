"""Real Daphne processes for end-to-end tests, and a plain HTTP client that keeps cookies."""

import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url():
    """The URL of the database the test run uses, for server processes to share it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class Daphne:
    """One real Daphne process serving Parley on a loopback port; env adds settings (None unsets one),
    options are Daphne's own command-line options. It is ready when /healthz answers 200 (healthy),
    or answers at all."""

    def __init__(self, env=None, port=None, app="project.asgi:application", cwd=ROOT, options=(), healthy=True):
        self.healthy = healthy
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(prefix="daphne-", suffix=".log")  # gone when the test run ends
        environment = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "true", "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        environment = {name: value for name, value in environment.items() if value is not None}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *options, "-b", "127.0.0.1", "-p", str(self.port), app],
            cwd=cwd, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.process.kill()  # one that never answered must not outlive the test run
            self.process.wait()
            raise

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError:
                if not self.healthy:
                    return
                time.sleep(0.1)
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not answer /healthz within {timeout}s:\n{self.output()}")

    def output(self):
        """What the server has logged so far (read in place: the process keeps writing at its offset)."""
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
                # PostgreSQL ends a dead client's session a moment later; the test database can
                # only be dropped once it has.
                time.sleep(0.3)
        return self.output()


@contextlib.contextmanager
def daphne(env=None, **kwargs):
    server = Daphne(env, **kwargs)
    try:
        yield server
    except BaseException:
        print(f"--- daphne on port {server.port} ---\n{server.stop()}")  # shown with the failure
        raise
    finally:
        server.stop()


class RedisServer:
    """A redis-server of the test's own on a spare port, saving nothing, to stop and start at will."""

    def __init__(self, binary):
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.name = f"127.0.0.1:{self.port}"  # as Parley names a Redis host (never its password)
        self.process = None
        self.start()

    def start(self, timeout=10):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self):
        """Kill it (as a crash would): its connections drop at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def redis_servers(count=1):
    """count RedisServers, stopped at the end; without redis-server installed the test fails under
    CI and skips elsewhere."""
    import pytest

    from tests.conftest import ci

    binary = shutil.which("redis-server")
    if binary is None:
        if ci():
            pytest.fail("redis-server is missing")
        pytest.skip("needs redis-server on PATH")
    servers = []
    try:
        for _ in range(count):
            servers.append(RedisServer(binary))
        yield servers
    finally:
        for server in servers:
            server.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client that posts forms the way a browser without JavaScript does."""

    def __init__(self, base_url, cookies=None):
        """cookies: another Browser's jar, to be the same person on another process."""
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar() if cookies is None else cookies
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)

    def request(self, method, path, data=None, headers=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def get(self, path):
        return self.request("GET", path)

    def form_token(self, page):
        """GET the page and take its form's CSRF token (the cookie comes along)."""
        status, _, html = self.get(page)
        assert status == 200, html
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]

    def submit(self, page, action, token, fields):
        """POST a form of page with its CSRF token."""
        return self.request("POST", action, {"csrfmiddlewaretoken": token, **fields}, {"Referer": self.base_url + page})

    def post_form(self, page, action, fields):
        """GET the page, take its CSRF token, POST the form: what a person's browser does."""
        return self.submit(page, action, self.form_token(page), fields)
