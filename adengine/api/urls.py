from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

app_name = "adengine-api"

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings={"TITLE": "adengine API", "VERSION": "1", "SCHEMA_PATH_PREFIX": "/api/adengine/v1"}
        ),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="adengine-api:schema"), name="docs"),
]
