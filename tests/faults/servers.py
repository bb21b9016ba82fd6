"""Real web servers (runserver, gunicorn) on a free port and the test database, for fault tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
VIEW_TOKEN = re.compile(r'/ads/v/([^"/]+)\.gif')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A web server process serving the test database; ``stop`` sends a signal and waits for it to end."""

    def __init__(
        self,
        kind: str,
        database: str,
        log_path: Path,
        *,
        workers: int = 2,
        settings: str = "tests.faults.server_settings",
        env: dict | None = None,
    ) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "ADENGINE_TEST_DATABASE": database,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        bind = f"127.0.0.1:{self.port}"
        if kind == "runserver":
            cmd = [sys.executable, "manage.py", "runserver", bind, "--noreload", "--skip-checks"]
        else:  # gunicorn as in production: workers (two by default) of four threads
            cmd = [sys.executable, "-m", "gunicorn", "shop.wsgi", "-b", bind, "-w", str(workers), "--threads", "4"]
            cmd += ["--graceful-timeout", "20"]
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server ended: {self.output()}")
            try:
                status, _ = self.get("/ads/personalisation/")  # a GET there is a 405: no impression made
                if status:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the server did not come up: {self.output()}")

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers={"User-Agent": BROWSER})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not stop within {timeout} s: {self.output()}") from None
        finally:
            self.log.close()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]


def burst(server: Server, *, decisions: int, pages: int, clients: int = 8) -> list[str]:
    """Decisions through the API and home pages with an ad slot, concurrently; the view tokens of every ad."""

    def decision(i: int) -> list[str]:
        status, body = server.get(f"/api/adengine/v1/decisions/?placement=home-hero&session=burst-session-{i:06d}")
        assert status == 200, body[:500]
        return [ad["view_url"].rsplit("/", 1)[-1].removesuffix(".gif") for ad in json.loads(body)["ads"]]

    def page(i: int) -> list[str]:
        status, body = server.get("/")
        assert status == 200, body[:500]
        return VIEW_TOKEN.findall(body)

    with ThreadPoolExecutor(clients) as pool:
        jobs = [pool.submit(decision, i) for i in range(decisions)] + [pool.submit(page, i) for i in range(pages)]
        return [token for job in jobs for token in job.result()]
