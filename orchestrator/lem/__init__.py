"""LLenergyMeasure host orchestrator: configs, campaigns, containers and results."""

__version__ = "0.1.0"
