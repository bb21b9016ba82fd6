"""The log's (campaign_id, served_at) index carries shopper_id, placement_id and creative_id (``INCLUDE``): a
report's reach, by day, placement or headline, is an index-only scan.

A 30-day reach is ``count(DISTINCT shopper_id)`` over a campaign's impressions in 31 daily partitions, grouped by
day, placement or headline; without those columns in the index each impression is a heap page read (1.6 s for a
campaign with 250,000 impressions in a log of 49 million rows). With them, and the partitions of closed days vacuumed (``maintain_log_partitions`` vacuums a day's
partition once the day is over: its pages become all-visible), the heap is not read.

On a populated log the index is rebuilt on every partition (``CREATE INDEX`` on the partitioned table; writes to the
log wait for it). Reversible: the reverse builds the index of 0019 / 0023 again.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("adengine", "0023_partitioned_log"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="impression",
            name="adengine_impr_campaign_time",
        ),
        migrations.AddIndex(
            model_name="impression",
            index=models.Index(
                fields=["campaign", "served_at"], include=["shopper", "placement", "creative"], name="adengine_impr_campaign_time"
            ),
        ),
    ]
