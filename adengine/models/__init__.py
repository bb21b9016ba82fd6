"""adengine's models, re-exported from one module per area."""

from .audience import EncoderModel, InterestModel, InterestRefreshChunk, ProductVector, QueryVector
from .campaigns import Advertiser, Campaign, CampaignDay, Placement
from .creatives import CopywriterModel, Creative, GenerationRequest
from .events import BehaviourEvent, Shopper
from .experiments import Experiment
from .strategy import ClickModel, DailyStats, HourlyStats, StrategyState
from .tracking import AdEvent, CapCounter, Conversion, Impression, RateCounter

__all__ = [
    "AdEvent",
    "Advertiser",
    "BehaviourEvent",
    "CapCounter",
    "Campaign",
    "ClickModel",
    "CampaignDay",
    "Conversion",
    "Creative",
    "CopywriterModel",
    "DailyStats",
    "EncoderModel",
    "Experiment",
    "GenerationRequest",
    "HourlyStats",
    "Impression",
    "InterestModel",
    "InterestRefreshChunk",
    "Placement",
    "ProductVector",
    "QueryVector",
    "RateCounter",
    "Shopper",
    "StrategyState",
]
