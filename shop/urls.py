"""URLs of the demo shop; adengine is attached with one include()."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from . import views


class SkuConverter:
    """A SKU in a URL: anything but a slash or a NUL (PostgreSQL cannot compare a NUL: a 404, not a 500)."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SkuConverter, "sku")

app_name = "shop"

shop_patterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("p/<sku:sku>/", views.product, name="product"),
    path("search/", views.search, name="search"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/<sku:sku>/", views.cart_add, name="cart_add"),
    path("cart/remove/<sku:sku>/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("img/<sku:sku>.svg", views.placeholder_image, name="image"),
]

urlpatterns = [
    path("", include((shop_patterns, "shop"))),
    path("login/", auth_views.LoginView.as_view(template_name="shop/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("adengine.urls")),
]
