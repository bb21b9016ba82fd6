"""The daily roll-up: the hourly one summed by campaign, shop day and placement, for the dashboard's whole-run
totals and its last days (a few hundred rows per campaign where the hourly one has thousands, scattered through
a table of tens of millions).

Filled from the hourly roll-up as it stands (a shop upgrading gets its totals at once), the hourly table locked
against writes meanwhile (SHARE: the strategy update waits, reports do not), the unique constraint built after
the rows. From then on the strategy update and attribution's corrections write both, in one transaction.
Reversible: the reverse drops the table.
"""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models
from django.utils import timezone

BACKFILL = """
    INSERT INTO adengine_dailystats (day, campaign_id, placement_id, impressions, views, clicks, conversions, spend,
                                     revenue)
    SELECT (hour AT TIME ZONE %s)::date, campaign_id, placement_id, sum(impressions), sum(views), sum(clicks),
           sum(conversions), sum(spend), sum(revenue)
    FROM adengine_hourlystats GROUP BY 1, 2, 3
"""


def backfill(apps, schema_editor) -> None:
    """Sum the hourly roll-up by campaign, shop day (TIME_ZONE, as the strategy update files it) and placement."""
    with schema_editor.connection.cursor() as cur:
        cur.execute("LOCK TABLE adengine_hourlystats IN SHARE MODE")
        cur.execute(BACKFILL, [timezone.get_default_timezone_name()])
        cur.execute("ANALYZE adengine_dailystats")


class Migration(migrations.Migration):
    dependencies = [
        ("adengine", "0024_reach_index_only"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailyStats",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "day",
                    models.DateField(help_text="The shop's day (TIME_ZONE) of the hours summed.", verbose_name="day"),
                ),
                (
                    "impressions",
                    models.PositiveBigIntegerField(default=0, help_text="Ads served.", verbose_name="impressions"),
                ),
                (
                    "views",
                    models.PositiveBigIntegerField(default=0, help_text="Counted view beacons.", verbose_name="views"),
                ),
                (
                    "clicks",
                    models.PositiveBigIntegerField(
                        default=0, help_text="Counted clicks (no bots, no replays).", verbose_name="clicks"
                    ),
                ),
                (
                    "conversions",
                    models.PositiveBigIntegerField(
                        default=0, help_text="Orders credited to the clicks.", verbose_name="conversions"
                    ),
                ),
                (
                    "spend",
                    models.DecimalField(
                        decimal_places=6,
                        default=Decimal("0"),
                        help_text="What was billed.",
                        max_digits=18,
                        verbose_name="spend",
                    ),
                ),
                (
                    "revenue",
                    models.DecimalField(
                        decimal_places=2,
                        default=Decimal("0"),
                        help_text="Revenue of the conversions.",
                        max_digits=18,
                        verbose_name="revenue",
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        help_text="Whose ads.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="daily_stats",
                        to="adengine.campaign",
                        verbose_name="campaign",
                    ),
                ),
                (
                    "placement",
                    models.ForeignKey(
                        help_text="Where.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="daily_stats",
                        to="adengine.placement",
                        verbose_name="placement",
                    ),
                ),
            ],
            options={
                "verbose_name": "daily statistics",
                "verbose_name_plural": "daily statistics",
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="dailystats",
            constraint=models.UniqueConstraint(
                fields=("campaign", "day", "placement"), name="adengine_dailystats_unique"
            ),
        ),
    ]
