# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -- install, start embedded PostgreSQL+pgvector and Redis, migrate, load the demo
#                  data, start two Celery workers, beat and the web server on 127.0.0.1:8000
#   make test   -- install, then run the whole test suite against the same real services
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-main test-hostapp lint bench copywriter screenshots stop clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	# the CPU build of torch, pinned exactly (any other version downloads gigabytes)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m shop.launcher

# The browser test needs Debian's chromium and chromedriver; installed here when missing.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }

test: install browser
	$(PY) -m shop.embedded run -- $(MAKE) --no-print-directory test-main test-hostapp

test-main:  # --ds: `shop.embedded run` exports shop.settings, which would win over pyproject's setting
	$(PY) -m pytest tests --ignore=tests/hostapp --ignore=tests/thirdhost -q --ds=tests.settings

test-hostapp:  # two other shops, each with its own settings: the plugin is not written for the demo
	$(PY) -m pytest tests/hostapp -q --ds=tests.hostapp.settings -p no:cacheprovider
	$(PY) -m pytest tests/thirdhost -q --ds=tests.thirdhost.settings -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check adengine shop tests bench fixtures
	$(VENV)/bin/ruff format --check adengine shop tests bench fixtures

bench: install  # needs the demo data: run `make demo` once first
	$(PY) -m shop.embedded run -- $(PY) bench/interests.py
	$(PY) bench/interest_model.py
	$(PY) -m shop.embedded run -- $(PY) bench/copywriter.py
	$(PY) -m shop.embedded run -- $(PY) bench/ann_search.py --n 100000 --n 1000000
	$(PY) -m shop.embedded run -- $(PY) bench/serving.py
	$(PY) -m shop.embedded run -- $(PY) bench/imports.py
	$(PY) -m shop.embedded run -- $(PY) bench/resilience.py

# Fine-tune the copywriter on the curated pairs and switch to it if it writes better copy on held-out products
# (about 35 minutes on 2 cores; beside a running `make demo`, whose next copy requests then use it).
copywriter: install
	$(PY) manage.py adengine_finetune_copywriter --activate \
	  --pairs fixtures/copywriter/pairs_en.jsonl fixtures/copywriter/pairs_zh.jsonl

screenshots: install browser  # docs/*.png at 1280 px from demo data (Chinese text needs fonts-noto-cjk)
	ADENGINE_SCREENSHOTS=docs $(PY) -m pytest tests/screenshots -q --ds=tests.settings -p no:cacheprovider

stop:
	$(PY) -m shop.embedded stop

clean: stop
	rm -rf .data
