"""URLs of the demo shop; adengine is attached with one include()."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

app_name = "shop"

shop_patterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("p/<str:sku>/", views.product, name="product"),
    path("search/", views.search, name="search"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/<str:sku>/", views.cart_add, name="cart_add"),
    path("cart/remove/<str:sku>/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("img/<str:sku>.svg", views.placeholder_image, name="image"),
]

urlpatterns = [
    path("", include((shop_patterns, "shop"))),
    path("login/", auth_views.LoginView.as_view(template_name="shop/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("adengine.urls")),
]
