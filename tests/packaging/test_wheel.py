"""The release wheel: adengine alone, ranges not pins, and it installs into a shop that is not the demo.

The wheel is built as a release would build it, installed (without its dependencies, which this
machine cannot download: they are lent from the test environment's site-packages, never its
editable adengine) into a fresh virtual environment, and a throw-away host project with its own
product and order models runs ``check``, ``migrate`` and one real decision through the API on the
session's PostgreSQL and broker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # from a clean copy of what the wheel is made of: a stale build/ folder in the checkout must not leak into it
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "adengine", source / "adengine", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("django_adengine-*.whl")
    return found


def test_the_wheel_holds_adengine_only_with_its_templates_and_migrations(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    # no demo shop (it would shadow a host app named `shop`), no tests, no fixtures
    assert tops == {"adengine", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "adengine/templates/adengine/slot.html" in names
    # the storefront's Chinese translation, compiled: a host runs no compilemessages for its plugins
    assert {"adengine/locale/zh_Hans/LC_MESSAGES/django.po", "adengine/locale/zh_Hans/LC_MESSAGES/django.mo"} <= set(
        names
    )
    assert any(re.fullmatch(r"adengine/migrations/0001_\w+\.py", n) for n in names)


def test_dependencies_are_ranges_and_twine_accepts_the_metadata(wheel):
    meta = zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    )
    requires = [line for line in meta.decode().splitlines() if line.startswith("Requires-Dist:")]
    torch = next(line for line in requires if re.match(r"Requires-Dist: torch\b", line))
    assert "==" not in torch, torch
    check = subprocess.run([sys.executable, "-m", "twine", "check", str(wheel)], capture_output=True, text=True)
    assert check.returncode == 0 and "PASSED" in check.stdout, check.stdout + check.stderr


HOST_FILES = {
    "manage.py": """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostproj.settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    """,
    "hostproj/__init__.py": "from .celery import app as celery_app\n",
    "hostproj/celery.py": """
        import os
        from celery import Celery
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostproj.settings")
        app = Celery("hostproj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "hostproj/settings.py": """
        import os
        import dj_database_url
        SECRET_KEY = "wheel-test-" + "k" * 60
        DEBUG = False
        ALLOWED_HOSTS = ["testserver"]
        INSTALLED_APPS = [
            "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "django.contrib.messages", "django.contrib.admin", "rest_framework", "drf_spectacular", "store",
            "adengine",
        ]
        MIDDLEWARE = [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ]
        ROOT_URLCONF = "hostproj.urls"
        TEMPLATES = [{
            "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]},
        }]
        DATABASES = {"default": dj_database_url.parse(os.environ["WHEEL_HOST_DATABASE_URL"])}
        USE_TZ = True
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
        ADENGINE_PRODUCT_MODEL = "store.Product"
        ADENGINE_ORDER_MODEL = "store.Order"
        ADENGINE = {"SERVING_LOG_MODE": "sync", "MODELS_DIR": os.environ["WHEEL_HOST_MODELS_DIR"]}
    """,
    "hostproj/urls.py": """
        from django.urls import include, path
        urlpatterns = [path("", include("adengine.urls"))]
    """,
    "store/__init__.py": "",
    "store/models.py": """
        from django.conf import settings
        from django.db import models

        class Category(models.Model):
            slug = models.SlugField(unique=True)
            name = models.CharField(max_length=80)

        class Product(models.Model):
            sku = models.CharField(max_length=32, unique=True)
            title = models.CharField(max_length=200)
            description = models.TextField(blank=True)
            category = models.ForeignKey(Category, models.PROTECT)
            price = models.DecimalField(max_digits=10, decimal_places=2)
            stock = models.IntegerField(default=0)
            is_active = models.BooleanField(default=True)

            def get_absolute_url(self):
                return f"/item/{self.sku}/"

        class Order(models.Model):
            number = models.CharField(max_length=20, unique=True)
            customer = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True)
            created_at = models.DateTimeField(auto_now_add=True)
            status = models.CharField(max_length=20, default="paid")

        class OrderLine(models.Model):
            order = models.ForeignKey(Order, models.CASCADE, related_name="lines")
            product = models.ForeignKey(Product, models.PROTECT)
            quantity = models.PositiveIntegerField(default=1)
            unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    """,
}

DECISION = """
import json
from decimal import Decimal

from django.test import Client

import adengine
from adengine.models import Advertiser, Campaign, Creative, Placement
from store.models import Category, Product

tea = Category.objects.create(slug="tea", name="Tea")
product = Product.objects.create(sku="TEA-1", title="Oolong tea", category=tea, price=Decimal("12.50"), stock=5)
Placement.objects.create(key="home", name="Home", format="product", max_ads=1)
campaign = Campaign.objects.create(
    advertiser=Advertiser.objects.create(name="Tea house"), name="Oolong", status="active", languages=["en"],
    bid=Decimal("0.50"), total_budget=Decimal("10"),
)
campaign.promoted_products.set([product])
Creative.objects.create(
    campaign=campaign, asset_type="headline", language="en", text="Oolong from the hills", status="approved",
    passes_rules=True, score=0.5,
)
resp = Client().get("/api/adengine/v1/decisions/", {"placement": "home"})
schema = Client().get("/api/adengine/v1/schema/")  # the host sets no DEFAULT_SCHEMA_CLASS
print(json.dumps({
    "status": resp.status_code, "body": resp.json(), "adengine": adengine.__file__, "schema": schema.status_code,
}))
"""


@pytest.fixture
def host_database():
    import psycopg

    name = f"adengine_wheel_{uuid.uuid4().hex[:8]}"
    server = os.environ["DATABASE_URL"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield re.sub(r"/[^/?]+(\?|$)", rf"/{name}\1", server, count=1)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_wheel_installs_into_another_shop_and_serves_a_decision(wheel, tmp_path, host_database):
    # given a fresh virtual environment with only the wheel installed (dependencies lent, not adengine)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "zz_lent_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # and a host project that is not the demo
    project = tmp_path / "project"
    for name, text in HOST_FILES.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")},
        "DJANGO_SETTINGS_MODULE": "hostproj.settings",
        "WHEEL_HOST_DATABASE_URL": host_database,
        "WHEEL_HOST_MODELS_DIR": str(tmp_path / "models"),
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [str(python), "manage.py", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    # when the host checks, migrates and asks for an ad
    manage("makemigrations", "store")
    manage("check")
    manage("migrate", "--noinput")
    result = json.loads(manage("shell", "-c", DECISION).strip().splitlines()[-1])
    # then the installed adengine (not the repository's) serves the campaign's ad
    assert Path(result["adengine"]).is_relative_to(venv), result["adengine"]
    assert result["status"] == 200, result
    (ad,) = result["body"]["ads"]
    assert ad["headline"] == "Oolong from the hills" and ad["product"]["title"] == "Oolong tea"
    assert ad["click_url"].startswith("http://testserver/ads/c/")
    # and the API's schema works although the host configured no schema class
    assert result["schema"] == 200
