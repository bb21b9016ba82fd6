"""``make demo``: the whole demo on embedded services, in one process tree.

Starts PostgreSQL+pgvector and Redis (unless DATABASE_URL / CELERY_BROKER_URL are set), migrates,
generates and imports the demo data (first start only), creates the demo accounts, loads the demo
campaigns and simulates a few days of traffic (first start only, before anything serves shoppers),
starts two Celery workers (one for copy, one for the rest), Celery beat and the web server on 127.0.0.1:8000,
asks the workers to embed changed products and refresh stale interest vectors (and to train the interest model
when none is live), prints the URLs and waits for Ctrl-C.

Every process it starts signs with one key: DJANGO_SECRET_KEY when set, else the demo's own random key,
made on first start and kept in the data directory (``shop.embedded.secret_key``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from fixtures.demo_login import PASSWORD as SHOPPER_PASSWORD
from fixtures.demo_login import demo_login
from shop import embedded
from shop.steps import Steps

ROOT = embedded.ROOT
HOST, PORT = "127.0.0.1", int(os.environ.get("DEMO_PORT", "8000"))
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
GENERATE_LIMIT = 5  # demo campaigns whose copy the copy worker writes on first start
STEPS = 12  # the steps demo() numbers, each done or skipped on every start
COPY_HANDED = f"generated copy for the first {GENERATE_LIMIT} demo campaigns, in English and Chinese (the slowest part)"


def _manage(*args: str, check: bool = True) -> int:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, check=check).returncode


def _shell(code: str, *, capture: bool = False) -> str:
    """``manage.py shell -c code``, without Django's note on the objects it imported; its output returned when
    ``capture`` (else it goes to the terminal)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--verbosity", "0", "-c", code],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return done.stdout or ""


def _generate_and_import(steps: Steps) -> None:
    """First start: the demo catalog, customers, behaviour and orders, generated then imported."""
    marker = embedded.DATA_DIR / "demo-loaded"
    if marker.exists():
        why = "loaded on an earlier start (delete .data/ or run `make clean` to start over)"
        steps.skip("generating the demo data", why)
        steps.skip("importing the demo data", why)
        return
    out = embedded.DATA_DIR / "demo"
    with steps.step("generating the demo data (catalog, customers, 35 days of behaviour, orders)"):
        subprocess.run([sys.executable, "-m", "fixtures.demo_data", "--out", str(out)], cwd=ROOT, check=True)
    with steps.step("importing the demo data"):
        _manage(
            "shop_import",
            "--products",
            str(out / "products.csv"),
            "--customers",
            str(out / "customers.csv"),
            "--events",
            str(out / "events.csv"),
            "--orders",
            str(out / "orders.csv"),
        )
    marker.write_text("ok\n")


def _accounts() -> None:
    """The admin and the demo shopper, with the README's passwords -- set only where the account has none yet: a
    new password would end their sessions on every start (and undo a password someone chose)."""
    shopper = demo_login().username  # a customer whose interests match a demo campaign (fixtures/demo_login.py)
    code = (
        "from django.contrib.auth import get_user_model\n"
        "U = get_user_model()\n"
        f"a, _ = U.objects.get_or_create(username={ADMIN_USER!r}, defaults={{'email': 'admin@example.com'}})\n"
        "a.is_staff = a.is_superuser = True\n"
        f"if not a.password or not a.has_usable_password(): a.set_password({ADMIN_PASSWORD!r})\n"
        "a.save()\n"
        f"c = U.objects.filter(username={shopper!r}).first()\n"
        f"if c and (not c.password or not c.has_usable_password()): c.set_password({SHOPPER_PASSWORD!r}); c.save()\n"
    )
    _shell(code)


def _campaigns_and_simulation(steps: Steps) -> None:
    """First start: the demo campaigns, then a few simulated days -- before any web process serves a shopper.

    The simulation refuses a database with live traffic (it would bill the live campaigns and re-date beside
    them), so it runs while nothing else does. It serves the campaigns' human-written copy (approved when
    loaded); the copy worker writes the generated copy once it starts.
    """
    marker = embedded.DATA_DIR / "demo-campaigns-loaded"
    what = (
        "loading the demo campaigns (their written copy scored, their targets computed) and queueing generated copy "
        f"for the first {GENERATE_LIMIT}"
    )
    if marker.exists():
        steps.skip(what, "loaded on an earlier start")
    else:
        # demo advertisers and campaigns; --generate-copy queues their copy (Gemma, in en and zh) for the worker
        # (copy is generated for the first five; the others keep their written copy, so the queue stays short).
        # Scoring the written copy loads the encoder, embeds the promoted products and computes each campaign's
        # target (from its words and those products only): the catalog's other products wait for the next step.
        with steps.step(what):
            _manage(
                "adengine_load_campaigns",
                str(ROOT / "fixtures" / "demo_campaigns.json"),
                "--generate-copy",
                "--generate-limit",
                str(GENERATE_LIMIT),
            )
        steps.hand_over(COPY_HANDED)
        marker.write_text("ok\n")
    marker = embedded.DATA_DIR / "demo-simulated"
    simulated = ("embedding the catalog, training the interest model and computing interest vectors",
                 "simulating 3 days of traffic (80 customers)")  # fmt: skip
    if marker.exists():
        for what in simulated:
            steps.skip(what, "done on an earlier start (beat keeps it fresh)")
        return
    # the simulated shoppers are personalised like real ones: the catalog embedded, the interest model
    # trained and interest vectors computed first (here, in the foreground; later starts leave it to beat)
    with steps.step(simulated[0]):
        _manage("adengine_embed")
    # a few simulated days, so the admin's reports and the strategy have data to show on first start
    with steps.step(simulated[1]):
        ran = _manage("adengine_simulate", "--days", "3", "--shoppers", "80", "--visits", "3", check=False) == 0
    if ran:
        marker.write_text("ok\n")
    else:
        print("the simulation did not run (see above); the demo starts without simulated days", file=sys.stderr)


# The upkeep a start may find due. Embedding products and refreshing interest vectors do only what is stale
# (products whose text changed, shoppers whose behaviour did: little after a first start's foreground embedding).
# The interest model is trained only when none is live: a first start has just trained it, and after that beat
# retrains it on its schedule, which outlives restarts (.data/celerybeat-schedule: a training that fell due while
# the demo was stopped runs as beat starts). Training it again here would fit the same data for a minute beside
# the copy worker, to keep the live model ("not switched").
ENQUEUE_UPKEEP = """
from adengine.models import InterestModel
from adengine.tasks import embed_products, refresh_interests, train_interest_model
embed_products.apply_async()
refresh_interests.apply_async()
if not InterestModel.objects.filter(is_active=True).exists():
    train_interest_model.apply_async()
    print("queued: train_interest_model")
"""


def _enqueue_initial_work(steps: Steps) -> None:
    out = _shell(ENQUEUE_UPKEEP, capture=True)
    steps.hand_over("embed products whose text changed, refresh the interest vectors of shoppers whose behaviour did")
    if "queued: train_interest_model" in out:
        steps.hand_over("train the interest model (none is live yet)")


def _all_queues() -> list[str]:
    """Every queue of the demo's Celery app: its default one and those adengine declares at start-up."""
    import django

    django.setup()
    from shop.celery import app

    return sorted(app.amqp.queues)


def _interactive_queue() -> str | None:
    """The queue of the copy people wait for (None: adengine sends it to the app's default queue)."""
    from adengine.conf import settings as ad_settings

    return ad_settings.QUEUES.get("interactive")


def _wait_for_http(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except Exception:
            time.sleep(0.5)
    return False


def child_environment() -> dict[str, str]:
    """The environment of every process the demo starts (``_manage``'s inherit it): the services' URLs and one
    secret key, DJANGO_SECRET_KEY or else the data directory's own, never a published one."""
    embedded.ensure_secret_key()
    env = os.environ.copy()
    env.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    return env


def _interrupt(signum, frame):  # SIGTERM stops the demo as Ctrl-C does: children and services too
    raise KeyboardInterrupt


def demo() -> int:
    """Run the demo until interrupted (Ctrl-C or SIGTERM)."""
    signal.signal(signal.SIGTERM, _interrupt)
    steps = Steps(STEPS)
    with steps.step("starting PostgreSQL+pgvector and Redis"):
        started = embedded.ensure_services(persistent_broker=True)  # queued work survives a restart of the demo
    env = child_environment()
    procs: list[subprocess.Popen] = []
    base = f"http://{HOST}:{PORT}"
    try:
        with steps.step("migrating the database"):
            _manage("migrate", "--noinput")
        with steps.step("checking the configuration"):
            _manage("check")
        _generate_and_import(steps)
        with steps.step("creating the demo accounts"):
            _accounts()
        _campaigns_and_simulation(steps)  # before the web server: the simulation never runs beside live traffic
        celery = [sys.executable, "-m", "celery", "-A", "shop"]
        with steps.step("starting the Celery workers, beat and the web server"):
            # two workers on a small machine: one for the copy people wait for (adengine's interactive queue),
            # one for everything else (the host's default queue, batch and strategy), so that generating the
            # demo's copy never holds back the first interest refresh nor beat's upkeep; production runs one per
            # queue (README, "Running it for real")
            interactive = _interactive_queue()
            rest = [q for q in _all_queues() if q != interactive]
            for name, queues in (("demo-copy", [interactive] if interactive else []), ("demo", rest)):
                if queues:
                    procs.append(
                        subprocess.Popen(
                            [*celery, "worker", "--loglevel", "INFO", "--concurrency", "1", "--hostname", f"{name}@%h"]
                            + ["--queues", ",".join(queues)],
                            cwd=ROOT,
                            env={**env, "SHOP_WORKER_NAME": name},  # in each of its log lines
                        )
                    )
            schedule = str(embedded.DATA_DIR / "celerybeat-schedule")
            procs.append(
                subprocess.Popen([*celery, "beat", "--loglevel", "INFO", "--schedule", schedule], cwd=ROOT, env=env)
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
                )
            )
        with steps.step("queueing the catalog and shopper upkeep for the workers"):
            _enqueue_initial_work(steps)
        with steps.step("waiting for the web server"):
            up = _wait_for_http(base + "/")
        if not up:
            print("the web server did not come up; see its output above", file=sys.stderr)
            return 1
        copy_queued = COPY_HANDED in steps.handed
        steps.summary(
            'Follow them in the workers\' lines in this terminal (the copy worker\'s say "demo-copy": "Task '
            'adengine.generate_creatives[...] succeeded"), '
            f"and the copy's place in line, progress and estimate at {base}/admin/adengine/generationrequest/"
            if copy_queued
            else "Follow them in the workers' lines in this terminal."
        )
        print(
            "\n"
            "adengine demo is running\n"
            f"  storefront : {base}/   (log in as {demo_login().describe()})\n"
            f"  admin      : {base}/admin/   ({ADMIN_USER} / {ADMIN_PASSWORD})\n"
            f"  API        : {base}/api/adengine/v1/   docs: {base}/api/adengine/v1/docs/\n"
            "Ctrl-C stops the web server, the workers, beat and the embedded services.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        try:
            stop_children(procs)
        except KeyboardInterrupt:  # pressed again before the children's wait began, or while it ended: kill them
            _kill(procs)
        finally:
            # the services stop in a second or two, whatever is pressed or sent meanwhile
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            embedded.stop_services(started)


def stop_children(procs: list[subprocess.Popen], *, grace: float = 20, out=sys.stdout) -> None:
    """Stop the web server, the workers and beat: SIGTERM, then up to ``grace`` seconds for a task in progress to
    end, then SIGKILL. Ctrl-C meanwhile (Celery invites a second one) kills them at once, and the caller still
    stops the services."""
    running = [p for p in procs if p.poll() is None]
    if not running:
        return
    print(
        f"stopping the web server, the workers and beat (a task in progress may take up to {grace:.0f} s; "
        "Ctrl-C again stops them at once) ...",
        file=out,
        flush=True,
    )
    for p in running:
        p.send_signal(signal.SIGTERM)
    try:
        deadline = time.monotonic() + grace
        for p in running:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
    except KeyboardInterrupt:
        _kill(running)
    for p in running:
        p.wait()


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()


if __name__ == "__main__":
    sys.exit(demo())
