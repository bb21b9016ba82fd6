"""adengine's models, re-exported from one module per area."""

from .audience import EncoderModel, ProductVector
from .events import BehaviourEvent, Shopper

__all__ = ["BehaviourEvent", "EncoderModel", "ProductVector", "Shopper"]
