"""LLenergyMeasure in-container harness: one RunSpec in, one RunResult out."""

__version__ = "0.1.0"
