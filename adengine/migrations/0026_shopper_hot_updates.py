"""Behaviour events update their shopper's row in place.

Each event moves ``Shopper.last_event_at``. While that column was indexed, and while the table's pages were full,
every such update wrote a new version of the row elsewhere and inserted it into every index of the table -- both
HNSW graphs of interest vectors among them, milliseconds each at a million shoppers, and dead entries that VACUUM
must then remove from the graphs. An update that changes no indexed column and finds room on its page is a HOT
update: no index is touched. So the column's index goes, and the table keeps a quarter of each page free
(fillfactor 75): PostgreSQL moves a row's wide values out of line (TOAST) until it is under about 2 kB, so a
quarter of an 8 kB page holds a new version of any row. The fillfactor applies to pages written from now on (a
row moves to such a page at its first update); VACUUM FULL or pg_repack applies it to the whole table at once.
Reversible.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("adengine", "0025_daily_rollup")]

    operations = [
        migrations.AlterField(
            model_name="shopper",
            name="last_event_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Time of the newest behaviour event; newer than 'interests computed from' means stale.",
                null=True,
                verbose_name="last behaviour",
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE adengine_shopper SET (fillfactor = 75)",
            reverse_sql="ALTER TABLE adengine_shopper RESET (fillfactor)",
        ),
    ]
