"""adengine's models, re-exported from one module per area."""

from .audience import EncoderModel, ProductVector
from .campaigns import Advertiser, Campaign
from .creatives import Creative, GenerationRequest
from .events import BehaviourEvent, Shopper

__all__ = [
    "Advertiser",
    "BehaviourEvent",
    "Campaign",
    "Creative",
    "EncoderModel",
    "GenerationRequest",
    "ProductVector",
    "Shopper",
]
