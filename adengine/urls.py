"""adengine's URLs; the host adds ``path("", include("adengine.urls"))``."""

from django.urls import include, path

from . import views

tracking_patterns = [
    path("v/<str:token>.gif", views.view_beacon, name="view"),
    path("c/<str:token>/", views.click, name="click"),
    path("why/<str:token>/", views.why, name="why"),
    path("personalisation/", views.personalisation, name="personalisation"),
]

urlpatterns = [
    path("api/adengine/v1/", include("adengine.api.urls")),
    path("ads/", include((tracking_patterns, "adengine"))),
]
