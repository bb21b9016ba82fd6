"""The admin's adengine pages in Chinese for a browser that asks for it (the demo's LocaleMiddleware)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from adengine.models import Creative, GenerationRequest
from tests.factories import CreativeFactory, UserFactory

pytestmark = pytest.mark.django_db
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_dashboard_speaks_chinese_to_a_chinese_browser(admin_client, healthy):
    waiting = healthy(name="Quiet launch", headline=False)
    # when an admin whose browser asks for Chinese opens the dashboard
    page = admin_client.get(reverse("admin:adengine_dashboard"), **CHINESE).content.decode()
    # then its heading, filters and columns are Chinese
    assert "<h1>广告系列总览</h1>" in page
    for words in ("广告主", "筛选", "诊断", "今天", "合计", "效果", "广告系列列表"):
        assert words in page, words
    assert "Campaign dashboard" not in page and "Diagnosis" not in page
    assert f'id="campaign-{waiting.pk}"' in page
    # and the same page in English for an English browser
    english = admin_client.get(reverse("admin:adengine_dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Campaign dashboard</h1>" in english and "广告系列总览" not in english


def test_the_review_page_and_copy_queue_speak_chinese(admin_client, healthy):
    campaign = healthy(name="Trail week")
    CreativeFactory(campaign=campaign, status=Creative.Status.DRAFT, passes_rules=True, text="Grip on every trail")
    GenerationRequest.objects.create(campaign=campaign, language="zh", n=4)
    page = admin_client.get(reverse("admin:adengine_campaign_review", args=[campaign.pk]), **CHINESE)
    text = page.content.decode()
    assert f"审核 {campaign} 的文案" in text
    for words in ("批准所选", "拒绝所选", "质量分", "正在生成的文案", "下一个开始", "暂无预估"):
        assert words in text, words
    # the app's and its models' names in the admin index
    index = admin_client.get(reverse("admin:app_list", args=["adengine"]), **CHINESE).content.decode()
    assert "广告引擎" in index and "广告系列" in index and "文案生成请求" in index
