from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

app_name = "adengine-api"

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
    path("schema/", SpectacularAPIView.as_view(urlconf="adengine.api.urls"), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="adengine-api:schema"), name="docs"),
]
