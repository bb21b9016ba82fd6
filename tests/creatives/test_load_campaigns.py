"""adengine_load_campaigns: campaigns from a JSON file, and generated copy queued for as many as asked."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from adengine.models import Campaign, Creative, GenerationRequest

pytestmark = pytest.mark.django_db  # (copy requests are queued on commit: recorded, not sent, here)


def _campaign(name: str) -> dict:
    return {
        "advertiser": "Kestrel",
        "name": name,
        "status": "active",
        "description": "Runners who go off-road: trail running shoes.",
        "keywords": ["trail running", "running shoes"],
        "languages": ["en"],
        "objective": "clicks",
        "pricing": "cpc",
        "bid": "0.50",
        "total_budget": "100",
        "assets": {
            "en": {
                "headlines": [f"{name}: trail running shoes"],
                "descriptions": ["Trail running shoes with grippy soles."],
            }
        },
    }


def test_copy_is_queued_for_the_first_campaigns_only(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps([_campaign("Trail season"), _campaign("Road season")]))
    call_command(
        "adengine_load_campaigns", str(path), "--generate-copy", "--generate-limit", "1", "--n", "2", "--no-targets"
    )
    first, second = Campaign.objects.get(name="Trail season"), Campaign.objects.get(name="Road season")
    # both campaigns with their written (approved) headline
    assert Creative.objects.filter(campaign=second, status=Creative.Status.APPROVED).count() == 1
    # and generated copy asked for the first only
    assert list(GenerationRequest.objects.values_list("campaign_id", flat=True)) == [first.pk]
