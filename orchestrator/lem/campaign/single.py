"""One experiment file as a campaign of one configuration (pure): ``lem experiment FILE``.

A single experiment runs through the same expansion, scheduler, runtimes, manifest and
results tree as any campaign: it is wrapped in a campaign whose only entry is the file
itself (``experiments: [{file: <name>}]``, read relative to the file's own directory).
The campaign is named after the experiment's ``config_name`` (or, without one, the file stem),
made path-safe. A single experiment runs one cycle by default and never waits: both
gaps are 0, whatever the number of cycles.

``runnable_campaign`` takes a file of either kind for the commands that run one.
"""

from __future__ import annotations

from pathlib import Path

from lem.campaign.naming import safe
from lem.config.campaign import CampaignConfig, ExecutionConfig, ExperimentEntry
from lem.config.loader import campaign_from_document, detect_kind
from lem.config.yaml_source import YamlDocument

SINGLE_CYCLES = 1
MAX_CAMPAIGN_NAME = 100  # CampaignConfig.campaign_name's pattern allows 100 characters
NAME_KEY = "config_name"  # the experiment key that names it


def experiment_campaign_name(document: YamlDocument) -> str:
    """The experiment's ``config_name`` (path-safe), else its file stem."""
    given = document.data.get(NAME_KEY)
    head = str(given) if isinstance(given, (str, int, float)) and str(given) else Path(document.file).stem
    return safe(head)[:MAX_CAMPAIGN_NAME].rstrip("._-") or "experiment"


def campaign_for_experiment(document: YamlDocument, *, cycles: int = SINGLE_CYCLES) -> CampaignConfig:
    """The one-configuration campaign that runs ``document`` ``cycles`` times with no gaps."""
    campaign = CampaignConfig(
        campaign_name=experiment_campaign_name(document),
        experiments=(ExperimentEntry(file=Path(document.file).name),),
        execution=ExecutionConfig(cycles=cycles, config_gap_seconds=0.0, cycle_gap_seconds=0.0),
    )
    return campaign.with_source(YamlDocument(file=document.file, data={}))


def runnable_campaign(document: YamlDocument, *, cycles: int = SINGLE_CYCLES) -> CampaignConfig:
    """A campaign file as written, or an experiment file wrapped; raises ``ConfigError``.

    ``cycles`` applies to an experiment file only (a campaign sets its own).
    """
    if detect_kind(document.data) == "campaign":
        return campaign_from_document(document)
    return campaign_for_experiment(document, cycles=cycles)
