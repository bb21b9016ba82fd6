from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import include, path
from django.views.decorators.http import require_POST

from .models import CartLine, Category, Product, ProductVariant, line_added


def product_page(request, pk):
    product = get_object_or_404(Product, pk=pk)
    return render(request, "thirdhost/product.html", {"product": product})


def category_page(request, slug):
    return render(request, "thirdhost/category.html", {"category": get_object_or_404(Category, slug=slug)})


@require_POST
def cart_add(request, sku):
    """The shop's AJAX cart: no template renders, so adengine hears of it through the shop's own signal."""
    variant = get_object_or_404(ProductVariant, sku=sku)
    if not request.session.session_key:
        request.session.save()
    line = CartLine.objects.create(session_key=request.session.session_key, variant=variant)
    line_added.send(sender=CartLine, request=request, variant=variant, quantity=line.quantity)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("products/<int:pk>/", product_page),
    path("categories/<slug:slug>/", category_page),
    path("cart/add/<str:sku>/", cart_add),
    path("", include("adengine.urls")),
]
