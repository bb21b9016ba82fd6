"""Real Celery processes and a broker of their own, for the tests that start, kill and restart them.

- ``broker``: the demo's persistent embedded Redis on a socket of its own, so stopping and restarting it touches
  neither the session's broker nor its queued tasks;
- ``celery_process``: starts ``celery -A shop worker|beat`` on that broker and the test database, with a
  settings module of the test's choosing, its output in a log the test can wait on;
- ``use_broker``: points this process's Celery app (the one the services publish with) at a broker;
- ``wait_for``: polls a condition until a deadline (never a fixed sleep as an assertion).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from shop import embedded

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Return the first truthy value of ``predicate()`` before ``timeout`` seconds, else fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Broker:
    """The demo's persistent embedded Redis (``shop.embedded``), in a directory of the test's own: ``stop`` shuts it
    down as ``make stop`` does, ``start`` brings it back with what its append-only file kept."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.sock = embedded._redis_socket(directory)
        self.url = f"redis+socket://{self.sock}"

    def client(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.sock), socket_timeout=2)

    def up(self) -> bool:
        return embedded._redis_ping(self.sock)

    def start(self) -> None:
        assert embedded.ensure_redis(self.dir, persistent=True) == self.url

    def stop(self) -> None:
        embedded.stop_redis(self.dir)
        wait_for(lambda: not self.up(), timeout=20, what="the test broker to stop")


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    if b.up():
        b.stop()


@contextmanager
def use_broker(url: str):
    """Publish through ``url`` from this process (the shop's Celery app and its pools point there meanwhile)."""
    from shop.celery import app

    keys = ("broker_url", "broker_read_url", "broker_write_url")
    saved = {k: app.conf.get(k) for k in keys}, app._pool, app.amqp._producer_pool
    for k in keys:
        app.conf[k] = url
    app._pool = app.amqp._producer_pool = None
    try:
        yield app
    finally:  # the pools stay in kombu's registry for the next use of this url (closing them would break it)
        for k, v in saved[0].items():
            app.conf[k] = v
        app._pool, app.amqp._producer_pool = saved[1], saved[2]


def child_database_url() -> str:
    """DATABASE_URL with the name of the test database this session created (child processes must use it too)."""
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + quote(connection.settings_dict["NAME"])))


class CeleryProcess:
    """``celery -A shop ...`` in a child process; its output goes to a log file the test reads."""

    def __init__(self, args: list[str], *, log: Path, env: dict) -> None:
        self.log = log
        self.handle = log.open("w")
        cmd = [sys.executable, "-m", "celery", "-A", "shop", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until the log matches ``pattern`` (a regex) ``count`` times; fails with the log's tail."""
        regex = re.compile(pattern)

        def seen():
            if self.proc.poll() is not None and len(regex.findall(self.output())) < count:
                pytest.fail(f"celery exited ({self.proc.returncode}) before {pattern!r}:\n{self.output()[-4000:]}")
            return len(regex.findall(self.output())) >= count

        try:
            wait_for(seen, timeout=timeout, what=pattern)
        except pytest.fail.Exception:
            raise pytest.fail.Exception(f"no {pattern!r} within {timeout:.0f} s:\n{self.output()[-4000:]}") from None
        return self.output()

    def children(self) -> list[int]:
        """Pids of the pool processes (prefork)."""
        import psutil

        return [c.pid for c in psutil.Process(self.pid).children()]

    def kill(self) -> None:
        """kill -9, as an out-of-memory killer or a pulled plug would."""
        if self.proc.poll() is None:
            for pid in self.children():
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(timeout=20)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        self.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.handle.close()


@pytest.fixture
def celery_process(tmp_path, broker):
    """Start celery processes on the test broker and the test database: ``celery_process("worker", ...)``."""
    started: list[CeleryProcess] = []

    def start(*args: str, settings: str = "tests.faults.worker_settings", **env: str) -> CeleryProcess:
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": child_database_url(),
            "CELERY_BROKER_URL": broker.url,
            "CELERY_RESULT_BACKEND": broker.url,
            **env,
        }
        p = CeleryProcess(list(args), log=tmp_path / f"celery-{len(started)}.log", env=environ)
        started.append(p)
        return p

    yield start
    for p in started:  # all at once: each waits for its task in hand
        p.terminate()
    for p in started:
        p.stop()


class ChatServer:
    """An OpenAI-compatible copywriter that holds its answers while ``hold`` is set (a model call in progress)."""

    HEADLINES = ["Music All Day Long", "Hear Every Beat", "Quiet Commute", "Pocket Concert"]
    DESCRIPTIONS = [
        "Wireless earbuds with 30 hours of battery.",
        "Wireless earbuds that block the noise of the city.",
        "Light wireless earbuds for running and the gym.",
        "Wireless earbuds with deep bass in a tiny case.",
    ]

    def __init__(self) -> None:
        self.calls = 0
        self.hold = threading.Event()
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls += 1
                outer.arrived.set()
                deadline = time.monotonic() + 120
                while outer.hold.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                first = int(body.get("seed") or 0)  # the copywriter seeds each batch on: distinct copy per batch
                choices = [
                    {
                        "index": i,
                        "message": {
                            "role": "assistant",
                            "content": f" {outer.HEADLINES[(first + i) % 4]}\n"
                            f"Description: {outer.DESCRIPTIONS[(first + i) % 4]}",
                        },
                    }
                    for i in range(body.get("n", 1))
                ]
                payload = json.dumps({"choices": choices, "usage": {"completion_tokens": 20 * len(choices)}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that asked was killed meanwhile

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hold.clear()
        self.server.shutdown()


@pytest.fixture
def chat_server():
    s = ChatServer()
    yield s
    s.close()
