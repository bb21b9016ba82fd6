from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

app_name = "adengine-api"

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
    path("campaigns/<int:campaign_id>/generate/", views.CampaignGenerateView.as_view(), name="campaign-generate"),
    path("generation-requests/<uuid:request_id>/", views.GenerationRequestView.as_view(), name="generation-request"),
    path("creatives/", views.CreativeListView.as_view(), name="creatives"),
    path(
        "creatives/<int:creative_id>/approve/",
        views.CreativeReviewView.as_view(action="approve"),
        name="creative-approve",
    ),
    path(
        "creatives/<int:creative_id>/reject/", views.CreativeReviewView.as_view(action="reject"), name="creative-reject"
    ),
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings={"TITLE": "adengine API", "VERSION": "1", "SCHEMA_PATH_PREFIX": "/api/adengine/v1"}
        ),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="adengine-api:schema"), name="docs"),
]
