"""adengine's SIGTERM handler drains the impression log and then does what SIGTERM did before: it calls the
host's handler, or ends the process by the signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from django.db import connection

from adengine.models import Impression

from .outage import database_outage
from .servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = """
import json, os, signal, sys, time
marker = sys.argv[1]
if marker != "-":
    def host_handler(signum, frame):
        with open(marker, "w") as f:
            f.write("the host's handler ran")
        sys.exit(7)
    signal.signal(signal.SIGTERM, host_handler)
import django
django.setup()
from adengine.serving import decide
ads = [ad for _ in range(5) for ad in decide(placement_key="home-hero", shopper=None).ads]
print(json.dumps([ad.nonce.hex for ad in ads]), flush=True)
sys.stdin.readline()  # the test may take the database away first
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(60)
print("still running", flush=True)
"""


@pytest.mark.parametrize("host_handler", [True, False], ids=["host-handler", "default"])
def test_sigterm_drains_the_log_then_does_what_it_did_before(placement, make_campaign, tmp_path, host_handler):
    make_campaign()
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.server_settings",
        "ADENGINE_TEST_DATABASE": connection.settings_dict["NAME"],
    }
    arg = str(marker) if host_handler else "-"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, arg], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, input="\n"
    )
    nonces = [uuid.UUID(hex=h) for h in json.loads(proc.stdout.splitlines()[0])]
    # the impressions pending when the signal came are written
    assert len(nonces) == 5 and Impression.objects.filter(nonce__in=nonces).count() == 5, proc.stderr[-2000:]
    if host_handler:  # then the host's own handler ran, and decided how the process ends
        assert marker.read_text() == "the host's handler ran" and proc.returncode == 7
    else:  # then the process ended by the signal, as it did before adengine
        assert proc.returncode == -signal.SIGTERM
    assert "still running" not in proc.stdout


def test_what_a_stopping_process_cannot_write_is_counted_and_logged(placement, make_campaign):
    # given a process with five impressions pending, whose database then goes away
    make_campaign()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.server_settings",
        "ADENGINE_TEST_DATABASE": connection.settings_dict["NAME"],
        "ADENGINE_TEST_SHUTDOWN_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "-"], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        nonces = json.loads(proc.stdout.readline())
        with database_outage():
            # when it is stopped with SIGTERM
            _, err = proc.communicate("\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # then it still stops, and says at ERROR how many impressions it could not write
    assert proc.returncode == -signal.SIGTERM
    assert "impression log: 5 impression(s) dropped (not written within SERVING_LOG_SHUTDOWN_SECONDS" in err, err
    assert len(nonces) == 5 and not Impression.objects.filter(nonce__in=[uuid.UUID(hex=h) for h in nonces]).exists()
