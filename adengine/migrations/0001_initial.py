# Hand-edited: product FKs follow settings.ADENGINE_PRODUCT_MODEL (swappable_dependency), and
# the pgvector extension is created first.

import django.db.models.deletion
import pgvector.django.indexes
import pgvector.django.vector
from django.conf import settings
from django.db import migrations, models

import adengine.db
import adengine.models.events


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.ADENGINE_PRODUCT_MODEL),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        adengine.db.PgvectorExtension(),
        migrations.CreateModel(
            name="EncoderModel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "version",
                    models.CharField(
                        help_text="Name of this encoder version, e.g. ft-20261130-1015.",
                        max_length=80,
                        unique=True,
                        verbose_name="version",
                    ),
                ),
                ("path", models.CharField(help_text="Model folder on disk.", max_length=500, verbose_name="folder")),
                (
                    "base",
                    models.CharField(
                        help_text="What it was fine-tuned from.", max_length=200, verbose_name="base model"
                    ),
                ),
                (
                    "is_active",
                    models.BooleanField(
                        default=False,
                        help_text="The encoder used for all vectors; at most one is active.",
                        verbose_name="active",
                    ),
                ),
                (
                    "metrics",
                    models.JSONField(
                        blank=True, default=dict, help_text="Evaluation before and after.", verbose_name="metrics"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, help_text="When it was trained.", verbose_name="created"),
                ),
            ],
            options={
                "verbose_name": "encoder version",
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("is_active", True)),
                        fields=("is_active",),
                        name="adengine_one_active_encoder",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ProductVector",
            fields=[
                (
                    "product",
                    models.OneToOneField(
                        help_text="The host shop's product.",
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.ADENGINE_PRODUCT_MODEL,
                        verbose_name="product",
                    ),
                ),
                (
                    "embedding",
                    pgvector.django.vector.VectorField(
                        dimensions=384, help_text="Unit-length passage embedding.", verbose_name="embedding"
                    ),
                ),
                (
                    "model_version",
                    models.CharField(
                        help_text="Encoder version that produced the embedding.",
                        max_length=80,
                        verbose_name="model version",
                    ),
                ),
                (
                    "text_hash",
                    models.CharField(
                        help_text="SHA-256 of the embedded text; unchanged text is not re-embedded.",
                        max_length=64,
                        verbose_name="text hash",
                    ),
                ),
                (
                    "updated_at",
                    models.DateTimeField(
                        auto_now=True, help_text="When the vector was written.", verbose_name="updated"
                    ),
                ),
            ],
            options={
                "verbose_name": "product vector",
                "indexes": [
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["embedding"],
                        m=16,
                        name="adengine_product_vec_hnsw",
                        opclasses=["vector_cosine_ops"],
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Shopper",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "anonymous_key",
                    models.CharField(
                        blank=True,
                        help_text="Random id kept in an anonymous visitor's session (not the session key, which rotates).",
                        max_length=32,
                        null=True,
                        unique=True,
                        verbose_name="anonymous key",
                    ),
                ),
                (
                    "personalisation",
                    models.BooleanField(
                        default=adengine.models.events._personalisation_default,
                        help_text="Consent to personalised ads. Off: no behaviour kept for interests, no interest vector.",
                        verbose_name="personalisation allowed",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, help_text="First seen.", verbose_name="created"),
                ),
                (
                    "last_event_at",
                    models.DateTimeField(
                        blank=True,
                        db_index=True,
                        help_text="Time of the newest behaviour event; newer than 'interests computed from' means stale.",
                        null=True,
                        verbose_name="last behaviour",
                    ),
                ),
                (
                    "interest_vector",
                    pgvector.django.vector.VectorField(
                        blank=True,
                        dimensions=384,
                        help_text="Unit-length embedding of the shopper's interests (cosine space).",
                        null=True,
                        verbose_name="interest vector",
                    ),
                ),
                (
                    "interest_source_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="last_event_at as it was when the interest vector was computed.",
                        null=True,
                        verbose_name="interests computed from",
                    ),
                ),
                (
                    "interest_model",
                    models.CharField(
                        blank=True,
                        help_text="Encoder version and method the interest vector was computed with.",
                        max_length=80,
                        verbose_name="interest model",
                    ),
                ),
                (
                    "interest_events",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="How many behaviour events the interest vector summarises.",
                        verbose_name="events used",
                    ),
                ),
                (
                    "interest_updated_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When the interest vector was written.",
                        null=True,
                        verbose_name="interests updated",
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        blank=True,
                        help_text="The registered customer; empty for an anonymous session.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="adengine_shopper",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "shopper",
            },
        ),
        migrations.CreateModel(
            name="BehaviourEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("search", "search"),
                            ("view", "product view"),
                            ("cart", "add to cart"),
                            ("purchase", "purchase"),
                        ],
                        help_text="What happened.",
                        max_length=10,
                        verbose_name="kind",
                    ),
                ),
                (
                    "query",
                    models.CharField(
                        blank=True,
                        help_text="The search text, with e-mail addresses and phone numbers removed.",
                        max_length=200,
                        verbose_name="search query",
                    ),
                ),
                (
                    "quantity",
                    models.PositiveIntegerField(
                        default=1, help_text="Units carted or bought.", verbose_name="quantity"
                    ),
                ),
                (
                    "revenue",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        help_text="For a purchase: what the line earned.",
                        max_digits=12,
                        null=True,
                        verbose_name="revenue",
                    ),
                ),
                (
                    "occurred_at",
                    models.DateTimeField(db_index=True, help_text="When it happened.", verbose_name="when"),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("tag", "template tag"),
                            ("api", "REST API"),
                            ("order", "order signal"),
                            ("import", "CSV import"),
                        ],
                        help_text="How adengine learned of it.",
                        max_length=10,
                        verbose_name="source",
                    ),
                ),
                (
                    "dedupe_key",
                    models.CharField(
                        blank=True,
                        help_text="Makes re-recording the same event (an order saved twice, an import run twice) a no-op.",
                        max_length=120,
                        null=True,
                        unique=True,
                        verbose_name="idempotency key",
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        blank=True,
                        help_text="The product viewed, carted or bought (empty for a search).",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.ADENGINE_PRODUCT_MODEL,
                        verbose_name="product",
                    ),
                ),
                (
                    "shopper",
                    models.ForeignKey(
                        help_text="Who did it; deleting the shopper deletes their behaviour.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="adengine.shopper",
                        verbose_name="shopper",
                    ),
                ),
            ],
            options={
                "verbose_name": "behaviour event",
                "ordering": ["-occurred_at"],
            },
        ),
        migrations.AddIndex(
            model_name="shopper",
            index=pgvector.django.indexes.HnswIndex(
                ef_construction=64,
                fields=["interest_vector"],
                m=16,
                name="adengine_shopper_interest_hnsw",
                opclasses=["vector_cosine_ops"],
            ),
        ),
        migrations.AddConstraint(
            model_name="shopper",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("anonymous_key__isnull", True), ("user__isnull", False)),
                    models.Q(("anonymous_key__isnull", False), ("user__isnull", True)),
                    _connector="OR",
                ),
                name="adengine_shopper_user_xor_anonymous",
            ),
        ),
        migrations.AddIndex(
            model_name="behaviourevent",
            index=models.Index(fields=["shopper", "occurred_at"], name="adengine_event_shopper_time"),
        ),
        migrations.AddIndex(
            model_name="behaviourevent",
            index=models.Index(fields=["kind", "occurred_at"], name="adengine_event_kind_time"),
        ),
        migrations.AddConstraint(
            model_name="behaviourevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "search"), ("query__gt", "")),
                    models.Q(models.Q(("kind", "search"), _negated=True), ("product__isnull", False)),
                    _connector="OR",
                ),
                name="adengine_event_has_subject",
            ),
        ),
    ]
