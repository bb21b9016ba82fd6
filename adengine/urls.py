"""adengine's URLs; the host adds ``path("", include("adengine.urls"))``."""

from django.urls import include, path

urlpatterns = [
    path("api/adengine/v1/", include("adengine.api.urls")),
]
