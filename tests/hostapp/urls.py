from django.shortcuts import get_object_or_404, render
from django.urls import include, path

from .models import Item


def item_page(request, pk):
    return render(request, "hostapp/item.html", {"item": get_object_or_404(Item, pk=pk)})


urlpatterns = [
    path("items/<uuid:pk>/", item_page),
    path("", include("adengine.urls")),
]
