"""The impression and event logs become tables partitioned by day (PostgreSQL declarative partitioning).

Each table is renamed, a partitioned table of the same columns takes its name (primary key (id, partition key),
ids from a sequence that goes on from the old ones, the nonce unique with served_at, only the indexes a query
needs), the partitions of the days that hold rows, of yesterday to a week ahead and a default one are created,
the rows are copied, and the old table is dropped. Foreign keys into the log are dropped (conversions outlive
the log's days); those out of it (campaign, placement, assets, product, shopper) are kept.

Reversible: the reverse builds plain tables again (the indexes and constraints of 0019); the foreign keys into
the log come back NOT VALID, since days dropped after LOG_RETENTION_DAYS leave conversions whose click is gone.
"""

import datetime as dt

import django.db.models.deletion
import django.utils.timezone
import uuid

from django.db import migrations, models

IMP, EV, CONV = "adengine_impression", "adengine_adevent", "adengine_conversion"
AHEAD = 7  # days of partitions created ahead (beat keeps LOG_PARTITIONS_AHEAD ahead from then on)
COUNTED = "status IN ('accepted', 'over_budget')"

# the partitioned tables' keys and indexes (names as Django's state in this migration names them)
PARTITIONED = {
    IMP: {
        "key": "served_at",
        "sql": [
            f"ALTER TABLE {IMP} ADD CONSTRAINT {IMP}_pkey PRIMARY KEY (id, served_at)",
            f"ALTER TABLE {IMP} ADD CONSTRAINT adengine_impression_nonce_once UNIQUE (nonce, served_at)",
            f"CREATE INDEX adengine_impr_shopper_time ON {IMP} (shopper_id, served_at)",
            f"CREATE INDEX adengine_impr_campaign_time ON {IMP} (campaign_id, served_at)",
        ],
    },
    EV: {
        "key": "impression_served_at",
        "sql": [
            f"ALTER TABLE {EV} ADD CONSTRAINT {EV}_pkey PRIMARY KEY (id, impression_served_at)",
            f"CREATE UNIQUE INDEX adengine_adevent_once ON {EV} (impression_id, impression_served_at, kind) "
            f"WHERE {COUNTED}",
            f"CREATE INDEX adengine_adevent_impression_id_1586e0d7 ON {EV} (impression_id)",
            f"CREATE INDEX adengine_adevent_campaign ON {EV} (campaign_id, kind, occurred_at)",
            f"CREATE INDEX adengine_adevent_occurred_at_6b95355b ON {EV} (occurred_at)",
        ],
    },
}
# the plain tables of 0019, for the reverse
PLAIN = {
    IMP: [
        f"ALTER TABLE {IMP} ADD CONSTRAINT {IMP}_pkey PRIMARY KEY (id)",
        f"ALTER TABLE {IMP} ADD CONSTRAINT adengine_impression_nonce_key UNIQUE (nonce)",
        f"CREATE INDEX adengine_impr_shopper_time ON {IMP} (shopper_id, served_at)",
        f"CREATE INDEX adengine_impr_campaign_time ON {IMP} (campaign_id, served_at)",
        f"CREATE INDEX adengine_impression_campaign_id_dacd7d8e ON {IMP} (campaign_id)",
        f"CREATE INDEX adengine_impression_creative_id_f481aaf6 ON {IMP} (creative_id)",
        f"CREATE INDEX adengine_impression_placement_id_9ced3e0d ON {IMP} (placement_id)",
        f"CREATE INDEX adengine_impression_shopper_id_8c0e1152 ON {IMP} (shopper_id)",
    ],
    EV: [
        f"ALTER TABLE {EV} ADD CONSTRAINT {EV}_pkey PRIMARY KEY (id)",
        f"CREATE UNIQUE INDEX adengine_adevent_once ON {EV} (impression_id, kind) WHERE {COUNTED}",
        f"CREATE INDEX adengine_adevent_impression_id_1586e0d7 ON {EV} (impression_id)",
        f"CREATE INDEX adengine_adevent_campaign_id_30686bce ON {EV} (campaign_id)",
        f"CREATE INDEX adengine_adevent_campaign ON {EV} (campaign_id, kind, occurred_at)",
        f"CREATE INDEX adengine_adevent_ip ON {EV} (ip, kind, occurred_at)",
        f"CREATE INDEX adengine_adevent_occurred_at_6b95355b ON {EV} (occurred_at)",
    ],
}
# foreign keys into the log (dropped forwards, NOT VALID backwards)
INTO_LOG = [
    (EV, "adengine_adevent_impression_id_1586e0d7_fk_adengine_", "impression_id", IMP),
    (CONV, "adengine_conversion_impression_id_0510f612_fk_adengine_", "impression_id", IMP),
    (CONV, "adengine_conversion_click_id_d878b3b4_fk_adengine_adevent_id", "click_id", EV),
]


def _one(cur, sql, params=()):
    cur.execute(sql, params)
    return cur.fetchone()


def _columns(cur, table):
    cur.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum",
        [table],
    )
    return [r[0] for r in cur.fetchall()]


def _drop_into_log(cur):
    """Drop every foreign key that references a log table (whatever its name)."""
    cur.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
        "AND confrelid IN (%s::regclass, %s::regclass)",
        [IMP, EV],
    )
    for table, name in cur.fetchall():
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def _set_aside(cur, table):
    """Rename ``table`` to ``<table>_old`` without its keys and indexes; returns its outgoing foreign keys."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    fks = cur.fetchall()
    for name, _ in fks:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", [table])
    for (name,) in cur.fetchall():
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cur.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [table])
    for (index,) in cur.fetchall():
        cur.execute(f"DROP INDEX {index}")
    cur.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    return fks


def _sequence(cur, table, top):
    """``table``.id from a sequence of its own that goes on after ``top``."""
    seq = f"{table}_id_seq"
    cur.execute(f"DROP SEQUENCE IF EXISTS {seq}")
    cur.execute(f"CREATE SEQUENCE {seq} AS bigint OWNED BY {table}.id")
    cur.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{seq}')")
    if top:
        cur.execute("SELECT setval(%s, %s)", [seq, top])


def _partition(cur, table, day):
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {table}_p{day:%Y%m%d} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)",
        [start, start + dt.timedelta(days=1)],
    )


def partition(apps, schema_editor):
    cur = schema_editor.connection.cursor()
    _drop_into_log(cur)
    today = dt.datetime.now(dt.UTC).date()
    for table, spec in PARTITIONED.items():
        key = spec["key"]
        fks = _set_aside(cur, table)
        old = f"{table}_old"
        cur.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cur.execute(
            f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ({key})"
            if table == IMP
            else f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
            f"{key} timestamp with time zone NOT NULL) PARTITION BY RANGE ({key})"
        )
        _sequence(cur, table, _one(cur, f"SELECT max(id) FROM {old}")[0])
        for sql in spec["sql"]:
            cur.execute(sql)
        for name, definition in fks:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cur.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        source = f"{IMP}_old"  # an event belongs to the day of its impression
        cur.execute(f"SELECT DISTINCT (served_at AT TIME ZONE 'UTC')::date FROM {source}")
        days = {r[0] for r in cur.fetchall()} | {today + dt.timedelta(days=n) for n in range(-1, AHEAD + 1)}
        for day in sorted(days):
            _partition(cur, table, day)
        columns = ", ".join(_columns(cur, old))
        if table == IMP:
            cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")
        else:  # an event goes to the day of its impression
            cur.execute(
                f"INSERT INTO {table} ({columns}, {key}) SELECT {', '.join('e.' + c for c in _columns(cur, old))}, "
                f"i.served_at FROM {old} e JOIN {IMP}_old i ON i.id = e.impression_id"
            )
    for table in PARTITIONED:
        cur.execute(f"DROP TABLE {table}_old")
        cur.execute(f"ANALYZE {table}")


def unpartition(apps, schema_editor):
    cur = schema_editor.connection.cursor()
    _drop_into_log(cur)
    for table, sql in PLAIN.items():
        key = PARTITIONED[table]["key"]
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'f'",
            [table],
        )
        fks = cur.fetchall()
        for name, _ in fks:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
                    [table])  # fmt: skip
        for (name,) in cur.fetchall():
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cur.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [table])
        for (index,) in cur.fetchall():
            cur.execute(f"DROP INDEX IF EXISTS {index}")
        old = f"{table}_old"
        cur.execute(f"ALTER TABLE {table} RENAME TO {old}")
        cur.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING CONSTRAINTS)")
        if table == EV:
            cur.execute(f"ALTER TABLE {table} DROP COLUMN {key}")
        columns = ", ".join(_columns(cur, table))
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")
        top = _one(cur, f"SELECT max(id) FROM {table}")[0]
        cur.execute(f"DROP TABLE {old} CASCADE")  # its partitions and its sequence
        cur.execute(f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        if top:
            cur.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, top])
        for statement in sql:
            cur.execute(statement)
        for name, definition in fks:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for table, name, column, target in INTO_LOG:
        cur.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}) REFERENCES {target} (id) '
            "DEFERRABLE INITIALLY DEFERRED NOT VALID"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("adengine", "0022_interest_refresh_at_scale"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="adevent",
                    name="adengine_adevent_once",
                ),
                migrations.RemoveIndex(
                    model_name="adevent",
                    name="adengine_adevent_ip",
                ),
                migrations.AddField(
                    model_name="adevent",
                    name="impression_served_at",
                    field=models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="When its impression was served (copied): the events' partition key, the day of its impression.",
                        verbose_name="impression served",
                    ),
                    preserve_default=False,
                ),
                migrations.AlterField(
                    model_name="adevent",
                    name="campaign",
                    field=models.ForeignKey(
                        db_index=False,
                        help_text="Whose ad (copied).",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ad_events",
                        to="adengine.campaign",
                        verbose_name="campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="adevent",
                    name="impression",
                    field=models.ForeignKey(
                        db_constraint=False,
                        help_text="What was seen.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="adengine.impression",
                        verbose_name="impression",
                    ),
                ),
                migrations.AlterField(
                    model_name="conversion",
                    name="click",
                    field=models.ForeignKey(
                        db_constraint=False,
                        help_text="The credited click.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversions",
                        to="adengine.adevent",
                        verbose_name="click",
                    ),
                ),
                migrations.AlterField(
                    model_name="conversion",
                    name="impression",
                    field=models.ForeignKey(
                        db_constraint=False,
                        help_text="Clicked ad.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversions",
                        to="adengine.impression",
                        verbose_name="impression",
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="campaign",
                    field=models.ForeignKey(
                        db_index=False,
                        help_text="Whose ad.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="impressions",
                        to="adengine.campaign",
                        verbose_name="campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="creative",
                    field=models.ForeignKey(
                        db_index=False,
                        help_text="The headline asset (the arm the policy chose).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="impressions",
                        to="adengine.creative",
                        verbose_name="headline",
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="nonce",
                    field=models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        help_text="One-time key in its signed URLs (unique with served_at: the log is partitioned by day).",
                        verbose_name="nonce",
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="placement",
                    field=models.ForeignKey(
                        db_index=False,
                        help_text="Where it showed.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="impressions",
                        to="adengine.placement",
                        verbose_name="placement",
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="served_at",
                    field=models.DateTimeField(
                        help_text="When it was chosen (the log's partition key).", verbose_name="served"
                    ),
                ),
                migrations.AlterField(
                    model_name="impression",
                    name="shopper",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Who saw it; emptied when the shopper is erased (the billing record stays).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="impressions",
                        to="adengine.shopper",
                        verbose_name="shopper",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="adevent",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("status__in", ["accepted", "over_budget"])),
                        fields=("impression", "impression_served_at", "kind"),
                        name="adengine_adevent_once",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="impression",
                    constraint=models.UniqueConstraint(
                        fields=("nonce", "served_at"), name="adengine_impression_nonce_once"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(partition, unpartition)],
        ),
    ]
