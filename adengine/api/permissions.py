"""Who may see and change what: an advertiser's managers their own campaigns, staff everything."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

from adengine.models import Campaign, Creative


def campaigns_for(user) -> QuerySet[Campaign]:
    """Campaigns the user may manage."""
    if not user or not user.is_authenticated:
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    return Campaign.objects.filter(advertiser__managers=user).distinct()


def creatives_for(user) -> QuerySet[Creative]:
    """Assets of the campaigns the user may manage."""
    return Creative.objects.filter(campaign__in=campaigns_for(user))


class IsAdvertiserUser(BasePermission):
    """Authenticated staff, or a manager of at least one advertiser."""

    message = "Only staff and advertisers' managers may use this endpoint."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or user.adengine_advertisers.exists()))
