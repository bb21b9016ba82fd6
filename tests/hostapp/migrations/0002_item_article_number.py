from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hostapp", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="article_number",
            field=models.CharField(blank=True, max_length=30, null=True, unique=True),
        ),
    ]
