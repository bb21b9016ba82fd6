from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import campaigns, root, serving, views
from .base import not_found
from .lookups import IdConverter
from .schema import COUNTED_CLIENTS

app_name = "adengine-api"

register_converter(IdConverter, "adengine_id")

urlpatterns = [
    path("", root.RootView.as_view(), name="root"),
    path("events/", views.EventsView.as_view(), name="events"),
    path("decisions/", serving.DecisionView.as_view(), name="decisions"),
    path("impressions/", serving.ImpressionBeaconView.as_view(), name="impressions"),
    path("why/<str:token>/", serving.WhyView.as_view(), name="why"),
    path("personalisation/", serving.PersonalisationView.as_view(), name="personalisation"),
    path("campaigns/", campaigns.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/<adengine_id:campaign_id>/", campaigns.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<adengine_id:campaign_id>/stats/", campaigns.CampaignStatsView.as_view(), name="campaign-stats"),
    path(
        "campaigns/<adengine_id:campaign_id>/generate/",
        views.CampaignGenerateView.as_view(),
        name="campaign-generate",
    ),
    path("generation-requests/<uuid:request_id>/", views.GenerationRequestView.as_view(), name="generation-request"),
    path("creatives/", views.CreativeListView.as_view(), name="creatives"),
    path(
        "creatives/<adengine_id:creative_id>/approve/",
        views.CreativeReviewView.as_view(action="approve"),
        name="creative-approve",
    ),
    path(
        "creatives/<adengine_id:creative_id>/reject/",
        views.CreativeReviewView.as_view(action="reject"),
        name="creative-reject",
    ),
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings={
                "TITLE": "adengine API",
                "VERSION": "1",
                "SCHEMA_PATH_PREFIX": "/api/adengine/v1",
                "DESCRIPTION": "Ads for apps and the shop's pages, their view and click tracking, and advertisers' "
                "campaigns. `GET /api/adengine/v1/` lists every endpoint. Products are named by the shop's own key "
                "(its SKU) or their id; answers give both (`product_id`, `product_key`) and absolute URLs.\n\n"
                + COUNTED_CLIENTS,
            },
            schema=None,  # the schema and docs views are not API operations (and use the host's schema class)
        ),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="adengine-api:schema", schema=None), name="docs"),
    # anything else under the API (an id of the wrong shape too) is the API's JSON 404, not the host's HTML page;
    # only paths ending in "/", so APPEND_SLASH still redirects a path without its slash
    re_path(r"^(?:[\s\S]*/)?$", not_found),
]
