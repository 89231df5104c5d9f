"""Lazy engine registry: ``backend name -> "module:Class"``; only the chosen module is imported."""

from __future__ import annotations

import difflib
import importlib

from lem_harness.engines.base import Engine
from lem_harness.experiment import ExperimentConfig

ENGINES: dict[str, str] = {
    "pytorch": "lem_harness.engines.pytorch:PyTorchEngine",
    "vllm": "lem_harness.engines.vllm:VLLMEngine",
    "tensorrt": "lem_harness.engines.tensorrt:TensorRTEngine",
}


def engine_class(backend: str) -> type[Engine]:
    if backend not in ENGINES:
        near = difflib.get_close_matches(backend, ENGINES, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise KeyError(f"unknown backend '{backend}'{hint}; choose one of {sorted(ENGINES)}")
    module_name, _, class_name = ENGINES[backend].partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_engine(config: ExperimentConfig) -> Engine:
    return engine_class(config.backend)(config)
