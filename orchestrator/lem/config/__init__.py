"""Experiment and campaign configuration: YAML loading, validation, advice.

``load_experiment`` / ``load_campaign`` / ``load_any`` raise ``ConfigError`` whose
``problems`` name file, line and dotted key; ``validate_config`` returns advice.
"""

from lem.config.advice import validate_config
from lem.config.campaign import (
    CampaignConfig,
    ColdStartConfig,
    DaemonConfig,
    ExecutionConfig,
    ExperimentEntry,
    GridConfig,
    ThermalGapConfig,
)
from lem.config.errors import ConfigError, ConfigProblem, ConfigWarning
from lem.config.loader import detect_kind, load_any, load_campaign, load_experiment
from lem_harness.experiment import CURRENT_SCHEMA_VERSION, ExperimentConfig

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "CampaignConfig",
    "ColdStartConfig",
    "ConfigError",
    "ConfigProblem",
    "ConfigWarning",
    "DaemonConfig",
    "ExecutionConfig",
    "ExperimentConfig",
    "ExperimentEntry",
    "GridConfig",
    "ThermalGapConfig",
    "detect_kind",
    "load_any",
    "load_campaign",
    "load_experiment",
    "validate_config",
]
