#!/bin/bash
# CPU per request of the decision endpoint and of the bare DRF endpoint, by process group (gunicorn, PostgreSQL,
# the load generator), from /proc: the same gunicorn (2 workers x 4 threads) and load generator (8 keep-alive
# clients) as bench/serving.py's throughput, 20 s per endpoint after a warm-up. SESS app sessions per client
# (default 1, as bench/serving.py; 1000: new shoppers who have seen few ads). Needs adengine_bench (bench/serving.py
# fills it) and the services' DATABASE_URL / CELERY_BROKER_URL / DJANGO_SECRET_KEY; DIR: the checkout to measure.
#
#   SESS=1000 flock /tmp/adengine-bench.lock bench/serving_cpu.sh
set -e
cd "${DIR:-$(dirname "$0")/..}"
export ADENGINE_BENCH_DATABASE_URL="${ADENGINE_BENCH_DATABASE_URL:-${DATABASE_URL/\/adengine\?//adengine_bench?}}"
export DJANGO_SETTINGS_MODULE=bench.settings
PORT=${PORT:-8799}
.venv/bin/python -m gunicorn bench.wsgi:application --bind 127.0.0.1:$PORT --workers 2 --threads 4 \
  --worker-class gthread --keep-alive 30 --log-level warning &
GPID=$!
trap 'kill $GPID 2>/dev/null; wait $GPID 2>/dev/null' EXIT
sleep 6
RUN=$(date +%s)
.venv/bin/python - <<PY
import os, sys, time
sys.path.insert(0, "bench")
import serving

def cpu():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            continue
        f = stat.rpartition(")")[2].split()
        t = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        kind = ("postgres" if "postgres" in cmd else "gunicorn" if "gunicorn" in cmd
                else "loadgen" if pid == str(os.getpid()) else "other")
        out[kind] = out.get(kind, 0) + t
    return out

sessions = int(os.environ.get("SESS", 1))
decisions = "/api/adengine/v1/decisions/?placement=home-hero&page=home&session=cpu-$RUN-{i}-abcdefgh"
for path in [decisions, "/bench/fixed/"]:
    serving._wait_ready($PORT, path, 8)
    serving._load($PORT, path, 5, 8)
    a = cpu()
    rps = serving._load($PORT, path, 20, 8, sessions)
    b = cpu()
    n = rps * 20
    print(path.split("?")[0], f"rps {rps:.0f}", {k: f"{1000 * (b[k] - a.get(k, 0)) / n:.3f} ms" for k in b})
PY
