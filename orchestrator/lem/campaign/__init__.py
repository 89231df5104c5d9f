"""Campaigns: grid expansion and run planning (pure), checks of campaign files."""

from lem.campaign.expand import Duplicate, ExpandedConfig, Expansion, expand_campaign
from lem.campaign.plan import PlannedRun, plan_campaign, total_gap_s

__all__ = [
    "Duplicate",
    "ExpandedConfig",
    "Expansion",
    "PlannedRun",
    "expand_campaign",
    "plan_campaign",
    "total_gap_s",
]
