"""The local files a configuration reads, and whether they are there.

One check for ``lem config validate`` and for ``lem campaign run`` (which builds every run's
container before the first starts): a local model (a directory or a single file such as a
GGUF), a local LoRA ``adapter`` or draft model (``pytorch.assisted_generation.model``) and a
prompts file (``prompts: {type: file}``) must exist; a prompts file must be a file; a prebuilt
TensorRT-LLM engine (``tensorrt.engine_path``) must be a directory.
"""

from __future__ import annotations

from pathlib import Path

from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import FilePrompts
from lem_harness.schema_base import is_local_path

MISSING_FIX = "fix the path (relative paths are read from the directory of the file that gives them)"


def local_inputs(cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """``(dotted key, path)`` of every local path the run reads, as the config gives it."""
    inputs = [("model_name", cfg.model_name)] if is_local_path(cfg.model_name) else []
    if cfg.adapter is not None and is_local_path(cfg.adapter):
        inputs.append(("adapter", cfg.adapter))
    assisted = cfg.pytorch.assisted_generation if cfg.pytorch is not None else None
    if assisted is not None and is_local_path(assisted.model):
        inputs.append(("pytorch.assisted_generation.model", assisted.model))
    prompts = cfg.prompt_source  # a dataset, when given, wins over prompts: the file is then not read
    if isinstance(prompts, FilePrompts):  # always a file, never a hub id
        inputs.append(("prompts.path", prompts.path))
    if cfg.tensorrt is not None and cfg.tensorrt.engine_path is not None:  # a prebuilt engine directory
        inputs.append(("tensorrt.engine_path", cfg.tensorrt.engine_path))
    return inputs


def input_problem(key: str, path: Path) -> str | None:
    """Why the run could not read ``path`` given under ``key``, or ``None`` when it can."""
    if not path.exists():
        return f"{path} does not exist"
    if key == "prompts.path" and path.is_dir():  # a file, or a pipe/device that yields one
        return f"{path} is a directory (prompts.path names a .jsonl file of prompts)"
    if key == "tensorrt.engine_path" and not path.is_dir():
        return f"{path} is not a directory (tensorrt.engine_path names a TensorRT-LLM engine directory)"
    if key == "adapter" and not (path / "adapter_config.json").is_file():
        return f"{path} holds no adapter_config.json (adapter names a PEFT LoRA adapter directory)"
    return None


def missing_inputs(cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """``(dotted key, message)`` for each local input of ``cfg`` (absolute paths) that a run would refuse."""
    out: list[tuple[str, str]] = []
    for key, value in local_inputs(cfg):
        problem = input_problem(key, Path(value).expanduser())
        if problem is not None:
            out.append((key, problem))
    return out
