"""Engine modules import without their frameworks; using them there names the image to use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lem_harness.engines import engine_class
from lem_harness.engines.base import EngineUnavailableError
from lem_harness.engines.tensorrt import TensorRTEngine
from lem_harness.engines.vllm import VLLMEngine
from lem_harness.experiment import ExperimentConfig

FRAMEWORKS = ("vllm", "tensorrt_llm", "tensorrt", "torch", "transformers")


@pytest.fixture
def no_frameworks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make vllm and tensorrt_llm unimportable here, whether or not they are installed."""
    for name in ("vllm", "tensorrt_llm"):
        monkeypatch.setitem(sys.modules, name, None)


def test_importing_the_engine_modules_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "import lem_harness.engines.vllm, lem_harness.engines.tensorrt\n"
        "import lem_harness.engines.vllm_args, lem_harness.engines.tensorrt_args\n"
        "import lem_harness.engines.trt_cache, lem_harness.engines.process_tree\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_registry_resolves_both_engines() -> None:
    assert engine_class("vllm") is VLLMEngine
    assert engine_class("tensorrt") is TensorRTEngine


@pytest.mark.usefixtures("no_frameworks")
def test_vllm_load_names_the_vllm_image() -> None:
    engine = VLLMEngine(ExperimentConfig(model_name="m", backend="vllm"))
    for step in (engine.load, engine.load_tokenizer):
        with pytest.raises(EngineUnavailableError, match="llenergymeasure/vllm image"):
            step()
    engine.close()


@pytest.mark.usefixtures("no_frameworks")
def test_tensorrt_load_and_build_name_the_tensorrt_image(tmp_path: Path) -> None:
    engine = TensorRTEngine(ExperimentConfig(model_name="m", backend="tensorrt"), cache_dir=tmp_path)
    for step in (engine.build, engine.load, engine.load_tokenizer):
        with pytest.raises(EngineUnavailableError, match="llenergymeasure/tensorrt image"):
            step()
    engine.close()
    assert list(tmp_path.iterdir()) == []


def test_tensorrt_refuses_settings_the_release_cannot_honour() -> None:
    config = ExperimentConfig(model_name="m", backend="tensorrt", tensorrt={"builder_opt_level": 1})
    with pytest.raises(ValueError, match="builder_opt_level 1"):
        TensorRTEngine(config)
