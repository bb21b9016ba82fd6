"""adengine's models, re-exported from one module per area."""

from .audience import EncoderModel, ProductVector
from .campaigns import Advertiser, Campaign
from .events import BehaviourEvent, Shopper

__all__ = ["Advertiser", "BehaviourEvent", "Campaign", "EncoderModel", "ProductVector", "Shopper"]
