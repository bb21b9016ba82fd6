"""A/B experiments between serving strategies or creative sets, with an optional holdout."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from .campaigns import Placement

ARM_SETTINGS = {
    "SERVING_EXPLORATION",
    "SERVING_RELEVANCE_WEIGHT",
    "SERVING_CANDIDATES",
    "SERVING_ASSETS_PER_CAMPAIGN",
    "SERVING_POLICY",
    "RELEVANCE_FLOOR",
}
POLICIES = ("contextual", "thompson")


def _salt() -> str:
    return secrets.token_hex(8)


def validate_arms(value) -> None:
    """A list of {"name", "weight" > 0, optional "settings" (serving overrides), optional "creatives" (ids)}."""
    if not isinstance(value, list) or len(value) < 2:
        raise ValidationError("an experiment needs a list of at least two arms")
    names = set()
    for i, arm in enumerate(value, 1):
        if not isinstance(arm, dict) or not arm.get("name") or not isinstance(arm.get("weight", 1), int | float):
            raise ValidationError(f"arm {i}: needs a name and a numeric weight")
        if arm.get("weight", 1) <= 0:
            raise ValidationError(f"arm {i}: the weight must be positive")
        if arm["name"] in names or arm["name"] == "holdout":
            raise ValidationError(f"arm {i}: the name {arm['name']!r} is taken")
        names.add(arm["name"])
        unknown = set(arm.get("settings", {})) - ARM_SETTINGS
        if unknown:
            raise ValidationError(f"arm {i}: settings may only override {', '.join(sorted(ARM_SETTINGS))}")
        policy = arm.get("settings", {}).get("SERVING_POLICY")
        if policy is not None and policy not in POLICIES:
            raise ValidationError(f"arm {i}: SERVING_POLICY is one of {', '.join(POLICIES)}, not {policy!r}")
        floor = arm.get("settings", {}).get("RELEVANCE_FLOOR")
        if floor is not None and not (isinstance(floor, int | float) and 0 <= floor <= 1):
            raise ValidationError(f"arm {i}: RELEVANCE_FLOOR is a number from 0 to 1")
        creatives = arm.get("creatives")
        if creatives is not None and not (isinstance(creatives, list) and all(isinstance(c, int) for c in creatives)):
            raise ValidationError(f"arm {i}: creatives is a list of asset ids")
        unknown_keys = set(arm) - {"name", "weight", "settings", "creatives"}
        if unknown_keys:
            raise ValidationError(f"arm {i}: unknown key(s) {', '.join(sorted(unknown_keys))}")


class Experiment(models.Model):
    """Shoppers are split between arms by a stable hash of who they are; each arm serves with its own
    settings or creative set; the holdout share sees only house ads."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        RUNNING = "running", "running"
        STOPPED = "stopped", "stopped"

    name = models.CharField("name", max_length=120, unique=True, help_text="What is being tested.")
    placement = models.ForeignKey(
        Placement,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="experiments",
        verbose_name="placement",
        help_text="Where it runs (empty: every placement).",
    )
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, default=Status.DRAFT, help_text="Only running ones split."
    )
    arms = models.JSONField(
        "arms",
        validators=[validate_arms],
        help_text='e.g. [{"name": "control", "weight": 1}, {"name": "explore", "weight": 1, '
        '"settings": {"SERVING_EXPLORATION": 0.2}}] or {"creatives": [ids]} for a creative set.',
    )
    holdout = models.FloatField("holdout share", default=0.0, help_text="Share of shoppers shown no sponsored ads.")
    salt = models.CharField(
        "salt", max_length=32, default=_salt, editable=False, help_text="Makes this experiment's split its own."
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holdout__gte=0) & models.Q(holdout__lt=1), name="adengine_experiment_holdout"
            )
        ]

    def __str__(self) -> str:
        return self.name
